"""A local identity provider shaped like Azure AD (Microsoft Entra ID), served by the service over HTTPS.

`directory`: the tenant and its service principals (`DATA_DIR/identity/`); `signing`: the token signing key
and its JWKS; `tokens`: access tokens issued and checked; `endpoints`: what MSAL and azure-identity call
(instance discovery, OpenID configuration, JWKS, the v2.0 token endpoint); `bearer`: the data plane's check
of an `Authorization: Bearer` token and the caller's role on the account.
"""
