-- KEYS p, pl; ARGV user, node, now ms. Returns {whether the user is still
-- online on another node, entries before}.
local me = ARGV[1] .. '|' .. ARGV[2]
local before = redis.call('ZCARD', KEYS[1])
redis.call('ZREM', KEYS[1], me)
redis.call('ZREM', KEYS[2], me)
return {others_live(KEYS[1], KEYS[2], ARGV[1], me, tonumber(ARGV[3])), before}
