-- The digest (SHA-256, hex) of the latest code issued for an activation: a removal that shows
-- the code (the application's own, or a removal code made from it) frees the licence at once.
ALTER TABLE activations ADD COLUMN code_digest TEXT;

-- Codes issued before 0006 recorded no offline_until: assume the longest they can pass offline
-- (last issue + the product's validation period + the 14 days' grace), so that removing them
-- without their machine waits as it does for newer ones.
UPDATE activations SET offline_until = COALESCE(last_validated_at, activated_at) + 86400 * (14 +
    COALESCE((SELECT p.validate_every_days FROM licences l
        LEFT JOIN orders o ON o.id = l.order_id LEFT JOIN serials s ON s.id = l.serial_id
        JOIN products p ON p.id = COALESCE(o.product_id, s.product_id)
        WHERE l.id = activations.licence_id), 365))
WHERE offline_until IS NULL AND removed_at IS NULL;
