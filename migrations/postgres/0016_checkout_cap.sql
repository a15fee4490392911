-- The pool's owner may cap what one checkout takes from its Token and Credit keys (NULL: no cap).
ALTER TABLE pools ADD COLUMN max_tokens_per_checkout BIGINT CHECK (max_tokens_per_checkout >= 1);
