"""Remote mode, server side (DESIGN §2 topology 2, issue 9): the trading PC at home talks HTTPS to the server.

- `credentials`: worker credentials scoped to one account (API key stored hashed, or an RSA key);
- `auth`: DRF authentication for them (same schemes and replay store as the ingest API);
- `feed`: what the account needs, down (settings, switches, the planner's inputs, approvals, cancels);
- `longpoll`: one poller thread per process wakes waiting feed requests when the version changes;
- `report`, `mirror`: the PC's batched report, validated, then upserted by natural keys;
- `quotes`: worker-reported quotes as a source in the server's quote chain, and missing-price notices;
- `api`: the two endpoints.

Remote mode, trading PC side (`qmt_worker --server URL`):

- `client`: HTTP to the server (bounded timeouts, TLS verified, API key or v2 signed tokens);
- `apply`: a feed written into the PC's own database (the server's snapshot ids and times);
- `outbox`: the report queue, i.e. the local ledger read past cursors kept in `RemoteSync`;
- `runner`: the feed and report threads around the unchanged worker loop.
"""
