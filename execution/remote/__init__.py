"""Remote mode, server side (DESIGN §2 topology 2, issue 9): the trading PC at home talks HTTPS to the server.

- `credentials`: worker credentials scoped to one account (API key stored hashed, or an RSA key);
- `auth`: DRF authentication for them (same schemes and replay store as the ingest API);
- `feed`: what the account needs, down (settings, switches, the planner's inputs, approvals, cancels);
- `longpoll`: one poller thread per process wakes waiting feed requests when the version changes;
- `report`, `mirror`: the PC's batched report, validated, then upserted by natural keys;
- `quotes`: worker-reported quotes as a source in the server's quote chain, and missing-price notices;
- `api`: the two endpoints; `client`: the PC side of the wire.
"""
