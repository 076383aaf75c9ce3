local latest = tonumber(redis.call('GET', KEYS[1]) or '0')
local epoch = redis.call('GET', KEYS[3])
if not epoch then
  epoch = ARGV[4]
  redis.call('SET', KEYS[3], epoch)
  local ttl = tonumber(ARGV[5])
  if ttl > 0 then redis.call('PEXPIRE', KEYS[3], ttl) end
end
local after, before, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if latest == 0 then return {'0', epoch, after == 0 and '1' or '0'} end
if before > latest + 1 then before = latest + 1 end
local n = redis.call('LLEN', KEYS[2])
local oldest = latest + 1 - n
local empty = after >= before or after + 1 == before
local complete = empty or after + 1 >= oldest
if limit <= 0 or empty then return {string.format('%d', latest), epoch, complete and '1' or '0'} end
local lo = math.max(after + 1, oldest)
if before - lo > limit then
  lo = before - limit
  complete = false
end
local out = {string.format('%d', latest), epoch, complete and '1' or '0'}
if before - 1 >= lo then
  local items = redis.call('LRANGE', KEYS[2], lo - oldest, before - 1 - oldest)
  for i = 1, #items do out[#out + 1] = items[i] end
end
return out
