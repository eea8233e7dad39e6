-- Users who log in through an OpenID provider, by the provider's (issuer, subject): the one
-- stable identity a provider gives. Usernames only label them (a provider user named like a
-- local user gets another username, never the local account).
CREATE TABLE sso_identities (
    issuer      TEXT NOT NULL,
    subject     TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (issuer, subject)
);
CREATE INDEX sso_identities_user ON sso_identities (user_id);
