-- 001: the decisions table, its query indexes and the publication the
-- stream processor decodes.
--
-- The row keeps the canonical document (as validated by the codec, without
-- the server-set fields) in doc, plus the columns support queries filter on.
-- doc_sha256 is the SHA-256 of the canonical document's compact JSON text:
-- an idempotent retry carries the same hash, a conflicting one does not.
CREATE TABLE decisions (
    decision_id    uuid        PRIMARY KEY,
    purchase_id    text        NOT NULL,
    customer_id    text        NOT NULL,
    merchant_id    text        NOT NULL,
    outcome        text        NOT NULL,
    decided_at     timestamptz NOT NULL,
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    schema_version integer     NOT NULL,
    doc_sha256     bytea       NOT NULL,
    doc            jsonb       NOT NULL
);

-- Support queries: newest first by decided_at within one customer, merchant
-- or purchase; decision_id breaks ties so the keyset cursor is total.
CREATE INDEX decisions_customer_idx ON decisions (customer_id, decided_at DESC, decision_id DESC);
CREATE INDEX decisions_merchant_idx ON decisions (merchant_id, decided_at DESC, decision_id DESC);
CREATE INDEX decisions_purchase_idx ON decisions (purchase_id, decided_at DESC, decision_id DESC);

-- Logical decoding: the stream processor reads this publication with
-- pgoutput. Inserts are all it needs; decisions are never updated.
CREATE PUBLICATION decisions_pub FOR TABLE decisions WITH (publish = 'insert');
