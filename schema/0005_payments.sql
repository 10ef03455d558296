-- Payments and limits: Stripe events recorded once, each learner's entitlement, free and daily counters.

-- Every Stripe event by id: an event takes effect once however often Stripe delivers it. Events about a
-- subscription Charla cannot place yet (they arrived before its checkout) are parked and applied, in
-- Stripe's order, once the checkout links the subscription to a learner.
CREATE TABLE stripe_events (
    id              text PRIMARY KEY,
    type            text NOT NULL,
    created         bigint NOT NULL,          -- Stripe's event time (unix seconds): orders late deliveries
    subscription_id text,
    learner_id      uuid REFERENCES learners (id) ON DELETE SET NULL,
    state           text NOT NULL CHECK (state IN ('applied', 'parked', 'unmatched', 'ignored')),
    payload         jsonb NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX stripe_events_parked ON stripe_events (subscription_id, created) WHERE state = 'parked';

CREATE TABLE entitlements (
    learner_id           uuid PRIMARY KEY REFERENCES learners (id) ON DELETE CASCADE,
    status               text NOT NULL CHECK (status IN ('trial', 'active', 'past_due', 'cancelled', 'refunded')),
    kind                 text NOT NULL CHECK (kind IN ('one_off', 'subscription')),
    stripe_customer      text,
    stripe_subscription  text UNIQUE,
    payment_intent       text,
    cancel_at_period_end boolean NOT NULL DEFAULT false,
    status_at            bigint NOT NULL,   -- Stripe time of the event that set `status`: older ones never win
    announced            boolean NOT NULL DEFAULT true,  -- false: the next reply says "you're all set"
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX entitlements_intent ON entitlements (payment_intent);

ALTER TABLE learners ADD COLUMN free_used integer NOT NULL DEFAULT 0;

-- Paid learners' messages per day, the day in the learner's own timezone.
CREATE TABLE daily_usage (
    learner_id uuid NOT NULL REFERENCES learners (id) ON DELETE CASCADE,
    day        date NOT NULL,
    used       integer NOT NULL,
    PRIMARY KEY (learner_id, day)
);

-- Payment records are accounting records: they outlive the learner (erasure unlinks them).
ALTER TABLE payments DROP CONSTRAINT payments_learner_id_fkey;
ALTER TABLE payments ADD CONSTRAINT payments_learner_id_fkey
    FOREIGN KEY (learner_id) REFERENCES learners (id) ON DELETE SET NULL;
ALTER TABLE payments ADD COLUMN stripe_event_created bigint;
