"""Light Client Proxy (LCP): enclave attestation, proxy messages and the LCP service."""
