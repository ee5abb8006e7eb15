-- 0013_device_removal: a user can remove a device (DELETE /v1/devices/{device_id}).
-- The tiers cap the devices a user has (free: 2), and until now nothing removed one: a user who
-- replaced a sensor could register no other (two walkthroughs hit 409 device_quota with no way
-- out). A removed device is kept, so that its sessions (sessions_device_fkey) and readings still
-- name it: removed_at is set, and it counts toward no quota, syncs nothing (404, as an unknown
-- device) and is left out of the user's devices. Registering it again (by id, or by its serial
-- number) restores it, to whichever user of the organisation registers it.
ALTER TABLE devices ADD COLUMN removed_at timestamptz;
COMMENT ON COLUMN devices.removed_at IS 'When its user removed the device (DELETE /v1/devices/{device_id}); NULL while registered. A removed device counts toward no quota and takes no readings until registered again.';
