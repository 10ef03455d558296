"""The bus's Lua scripts: each runs atomically on the Redis server (see charla.core.bus for what they keep)."""

# KEYS: stream, sequence hash, dedupe key, seal key, then the done hash of each of the stream's consumer
# groups (ARGV[6..], same order); ARGV[5] is 1 when the dedupe key applies (there is always one: a cluster
# client routes a script by its keys, which must all be in the stream's slot). A publish to a stream that
# does not exist (fresh Redis, or one that lost its data) creates the groups first, so no group ever
# starts after an event it should have seen. A sealed stream (the partition count is changing) refuses
# new events: the caller publishes to the new layout; a duplicate is still recognised here first.
PUBLISH = """
local dedupe = ARGV[5] == '1'
if dedupe and redis.call('EXISTS', KEYS[3]) == 1 then return false end
if redis.call('EXISTS', KEYS[4]) == 1 then return redis.error_reply('SEALED partition count changing') end
if redis.call('EXISTS', KEYS[1]) == 0 then
  local seqs = redis.call('HGETALL', KEYS[2])
  for g = 6, #ARGV do
    redis.call('XGROUP', 'CREATE', KEYS[1], ARGV[g], '$', 'MKSTREAM')
    for i = 1, #seqs, 2 do redis.call('HSET', KEYS[g - 1], seqs[i], seqs[i + 1]) end
  end
end
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[4]) then return redis.error_reply('BACKLOG stream is full') end
if dedupe then redis.call('SET', KEYS[3], '1', 'EX', ARGV[3]) end
local seq = redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
return redis.call('XADD', KEYS[1], '*', 'l', ARGV[1], 's', seq, 'e', ARGV[2])
"""

# Whether a learner has nothing left on a partition of the previous layout for one group (sequence hash,
# done hash): their events on the new layout wait until then, so the change keeps per-learner order.
DRAINED = """
local seq = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local done = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
return seq <= done and 1 or 0
"""

BEGIN = """
local done = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local seq = tonumber(ARGV[2])
if seq <= done then return 'done' end
if seq > done + 1 then return 'wait' end
if redis.call('SET', KEYS[2], ARGV[3], 'NX', 'PX', ARGV[4]) then return 'run' end
if redis.call('GET', KEYS[2]) == ARGV[3] then
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
  return 'run'
end
return 'wait'
"""

COMPLETE = """
local done = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if tonumber(ARGV[2]) > done then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
redis.call('XACK', KEYS[3], ARGV[4], ARGV[5])
if redis.call('GET', KEYS[2]) == ARGV[3] then redis.call('DEL', KEYS[2]) end
redis.call('PUBLISH', ARGV[6], ARGV[1])
return 1
"""

# Mark a learner's sequence done for one group if it is not yet (erasure deleted the entries up to it).
ADVANCE = """
local done = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if tonumber(ARGV[2]) > done then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
redis.call('PUBLISH', ARGV[3], ARGV[1])
return 1
"""

# Create a group that starts at the stream's end, marking every sequence published so far as done for
# it; otherwise the first entry it reads would wait forever for predecessors it will never see.
CREATE_GROUP = """
local ok, err = pcall(redis.call, 'XGROUP', 'CREATE', KEYS[1], ARGV[1], '$', 'MKSTREAM')
if not ok then return 0 end
local seqs = redis.call('HGETALL', KEYS[2])
for i = 1, #seqs, 2 do redis.call('HSET', KEYS[3], seqs[i], seqs[i + 1]) end
return 1
"""
