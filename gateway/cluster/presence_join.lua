-- KEYS p, pl; ARGV user, node, expiry ms, now ms, key ttl ms. Returns
-- {whether the user is online on another node, entries after}.
local me = ARGV[1] .. '|' .. ARGV[2]
local online = others_live(KEYS[1], KEYS[2], ARGV[1], me, tonumber(ARGV[4]))
redis.call('ZADD', KEYS[1], ARGV[3], me)
redis.call('ZADD', KEYS[2], 0, me)
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return {online, redis.call('ZCARD', KEYS[1])}
