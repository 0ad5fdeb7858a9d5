-- Whether a provider's bearer tokens must be typed `at+jwt` (RFC 9068,
-- section 2.1). 0: an untyped token is taken unless it carries ID token
-- claims (nonce, at_hash, c_hash; auth_time without a scope); 1: only
-- tokens whose JOSE header says `typ: at+jwt`.
ALTER TABLE oidc_providers ADD COLUMN require_at_jwt_typ INTEGER NOT NULL DEFAULT 0;
