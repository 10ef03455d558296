-- Who did what on the dashboard (issue 18): one row per operator action and per login attempt, written in
-- the action's own transaction where it has one. Targets are ids (a learner's uuid, a broadcast number, a
-- dead letter's entry id), never a phone number or a message's text, so erasing a learner leaves no
-- personal data here.
CREATE TABLE audit_log (
    id         bigserial PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    operator   text NOT NULL,
    action     text NOT NULL,
    target     text,
    detail     text
);
