-- A licence's page: the vendor's own notes on a licence, and how many times each activation
-- was validated (beside when it last was).
ALTER TABLE licences ADD COLUMN notes TEXT NOT NULL DEFAULT '';
ALTER TABLE activations ADD COLUMN validations INTEGER NOT NULL DEFAULT 0;
