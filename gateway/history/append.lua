if #KEYS == 4 then
  local prev = redis.call('GET', KEYS[4])
  if prev then return {'dup', prev} end
end
local seq = redis.call('INCR', KEYS[1])
local t = redis.call('TIME')
local ts = string.format('%.0f', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
local s = string.format('%d', seq)
local payload = ARGV[1] .. s .. ARGV[2] .. ts .. ARGV[3]
if redis.call('EXISTS', KEYS[3]) == 0 then redis.call('SET', KEYS[3], ARGV[7]) end
local size = tonumber(ARGV[4])
if size > 0 then
  redis.call('RPUSH', KEYS[2], s .. '|' .. ts .. '|' .. payload)
  redis.call('LTRIM', KEYS[2], -size, -1)
end
local ttl = tonumber(ARGV[5])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
  redis.call('PEXPIRE', KEYS[3], ttl)
end
if #KEYS == 4 then redis.call('SET', KEYS[4], ARGV[10] .. '|' .. s .. '|' .. ts, 'PX', ARGV[6]) end
if ARGV[8] ~= '' then redis.call(ARGV[11], ARGV[8], ARGV[9] .. '|' .. s .. '|' .. payload) end
return {s, ts}
