-- Password and code attempts are reserved (a row written) before they are
-- checked, and a success releases its own row: every row gets an id to be
-- released by (an identity: never reused).
ALTER TABLE login_failures ADD COLUMN id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY;
