"""The Multi-Paxos consensus core: a pure state machine behind the same replica contract as
the Raft core (tick/step/propose/ready/advance), so the driver, storage and servers run it
unchanged."""
