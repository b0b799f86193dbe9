"""Microsoft Graph adapters: the directory and the PSTN calls reader, app-only, per tenant.

One HTTP client (`client.GraphClient`) carries every Graph call with one retry loop; app-only
tokens come from azure-identity (`tokens.GraphTokens`); `adapters.GraphAdapters` wires both to
the directory and the PSTN calls reader for the application factory. Graph's answers become
`errors.GraphError`, which each adapter turns into what its port promises.
"""
