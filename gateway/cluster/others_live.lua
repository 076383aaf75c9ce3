-- others_live: whether user has a live entry of another node.
local function others_live(p, pl, user, me, now)
  local ms = redis.call('ZRANGEBYLEX', pl, '[' .. user .. '|', '[' .. user .. '|\255')
  for _, m in ipairs(ms) do
    if m ~= me then
      local s = redis.call('ZSCORE', p, m)
      if s and tonumber(s) > now then return 1 end
    end
  end
  return 0
end
