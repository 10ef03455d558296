-- Erased identities are now remembered as an HMAC-SHA256 under the server secret (CHARLA_SECRET_KEY), not
-- a plain sha256: anyone with the database could reverse those by hashing every phone number. A sha256 row
-- cannot be converted (that would need the number it hides), so every row written before this migration is
-- deleted: keeping them would keep the reversible hashes. The cost is that a learner who erased their data
-- before this upgrade gets the free messages again if they come back.
DELETE FROM erased_quota;
COMMENT ON COLUMN erased_quota.identity_hash IS
    'HMAC-SHA256 (key: CHARLA_SECRET_KEY) of "charla-quota:<column>:<value>": not reversible without the key';
