"""The OCI distribution client: pull and push images over HTTP(S); the only network code."""
