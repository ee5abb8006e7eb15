-- 0012_api_key_tier: an API key keeps its creator's rate-limit tier.
-- A key acts as the admin who created it, but a tier comes from a token's `tier` claim, which a
-- key has none of: every key ran on the default tier (free: 60 requests a minute, 2 devices),
-- whatever its creator's. The creating token's tier is now kept with the key; NULL (keys made
-- before this migration, or by a token without a tier) still means the default tier.
ALTER TABLE api_keys ADD COLUMN tier text CHECK (tier IS NULL OR tier IN ('free', 'plus', 'pro', 'enterprise'));
COMMENT ON COLUMN api_keys.tier IS 'Rate-limit tier of the token that created the key (lib/tiers.ts); NULL: the configured default tier.';
