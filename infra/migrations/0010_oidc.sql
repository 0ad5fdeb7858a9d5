-- OpenID Connect: an org's own identity providers, the provider subjects
-- linked to Gatehouse users, and sign-ins in flight (authorization code
-- with PKCE, state and nonce). Times are unix seconds.

CREATE TABLE IF NOT EXISTS oidc_providers (
    org_id        TEXT    NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    provider_id   TEXT    NOT NULL PRIMARY KEY,       -- idp_<32 hex>; also in the callback URL
    name          TEXT    NOT NULL,                   -- unique in the org
    issuer        TEXT    NOT NULL,                   -- the exact `iss` of its tokens
    client_id     TEXT    NOT NULL,
    client_secret TEXT,                               -- sealed with the master key; NULL for a public client
    scopes        TEXT    NOT NULL,                   -- space-separated, always with openid
    audiences     TEXT    NOT NULL DEFAULT '[]',      -- JSON array: bearer `aud` accepted (empty: the client id)
    allowed_azp   TEXT    NOT NULL DEFAULT '[]',      -- JSON array: bearer `azp` accepted (empty: any)
    tenant_id     TEXT,                               -- Entra `tid` its tokens must carry
    role_claim    TEXT    NOT NULL DEFAULT 'roles',   -- the claim holding groups or roles
    role_map      TEXT    NOT NULL DEFAULT '{}',      -- JSON object: claim value -> role name in the org
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS oidc_providers_name ON oidc_providers (org_id, name);
CREATE INDEX IF NOT EXISTS oidc_providers_issuer ON oidc_providers (issuer);

-- A provider's subject is one Gatehouse user.
CREATE TABLE IF NOT EXISTS oidc_identities (
    org_id        TEXT    NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    provider_id   TEXT    NOT NULL REFERENCES oidc_providers (provider_id) ON DELETE CASCADE,
    subject       TEXT    NOT NULL,                   -- the provider's `sub`
    user_id       TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email         TEXT,                               -- as the provider last said
    created_at    INTEGER NOT NULL,
    last_login_at INTEGER NOT NULL,
    PRIMARY KEY (provider_id, subject)
);
CREATE INDEX IF NOT EXISTS oidc_identities_user ON oidc_identities (user_id);

-- A sign-in between /start and /callback; only the digest of `state` is
-- kept, and a row is used once.
CREATE TABLE IF NOT EXISTS oidc_logins (
    state_digest  TEXT    NOT NULL PRIMARY KEY,
    org_id        TEXT    NOT NULL REFERENCES orgs (org_id) ON DELETE CASCADE,
    provider_id   TEXT    NOT NULL REFERENCES oidc_providers (provider_id) ON DELETE CASCADE,
    nonce         TEXT    NOT NULL,
    code_verifier TEXT    NOT NULL,
    link_user_id  TEXT    REFERENCES users (id) ON DELETE CASCADE, -- set when a signed-in user links the provider
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    used_at       INTEGER
);
