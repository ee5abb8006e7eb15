-- Webhooks can be paused (PATCH /v1/webhooks/{id} {"active": false}): while paused, new events
-- still become deliveries, held `pending`, and none is attempted; resumed, they go out in order,
-- and the retry schedule carries on from where each stood. A delivery can also be sent again by
-- hand (POST /v1/webhooks/{id}/deliveries/{delivery_id}/redeliver): pending again, due now, with
-- the whole retry schedule ahead of it (attempts so far are kept in `attempts`).
ALTER TABLE webhooks ADD COLUMN active boolean NOT NULL DEFAULT true;
COMMENT ON COLUMN webhooks.active IS 'false: paused, deliveries held pending and not attempted until it is active again.';
ALTER TABLE webhook_deliveries ADD COLUMN schedule_from integer NOT NULL DEFAULT 0;
COMMENT ON COLUMN webhook_deliveries.schedule_from IS 'attempts made before the last redelivery by hand: the retry schedule counts from it (attempts - schedule_from).';
