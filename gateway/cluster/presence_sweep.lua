-- KEYS p, pl; ARGV now ms. Removes expired entries and returns the users
-- left with no live entry.
local now = tonumber(ARGV[1])
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
local out = {}
for _, m in ipairs(gone) do
  if redis.call('ZREM', KEYS[1], m) == 1 then
    redis.call('ZREM', KEYS[2], m)
    local user = string.match(m, '^(.*)|[^|]*$')
    if user and others_live(KEYS[1], KEYS[2], user, m, now) == 0 then out[#out + 1] = user end
  end
end
return out
