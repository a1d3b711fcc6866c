"""A small DataJoint 2.3 pipeline on the private PostgreSQL (run in a child process by test_pg_export.py:
DataJoint keeps global state). Prints the key sets DataJoint itself gives for the export of
``Result & "session_id >= 6"``: the leaf, its ancestors and the parts of the exported sessions."""
import datetime
import json
import os

import datajoint as dj

dj.config["database.backend"] = "postgresql"
dj.config["database.host"] = "127.0.0.1"
dj.config["database.port"] = int(os.environ["PGPORT"])
dj.config["database.user"] = "djadmin"
dj.config["database.password"] = os.environ["PGPW"]
dj.config["database.use_tls"] = False
p = os.environ["PREFIX"]
schema = dj.Schema(f"{p}_lab")
@schema
class Subject(dj.Manual):
    definition = """
    subject_id : int32
    ---
    sex : enum('F', 'M', 'U')
    born : date
    info = null : json
    """
@schema
class Session(dj.Manual):
    definition = """
    -> Subject
    session_id : int32
    ---
    started : datetime(3)
    note : varchar(64)
    raw = null : bytes
    """
    class Channel(dj.Part):
        definition = """
        -> master
        channel : int16
        ---
        gain : float64
        """
@schema
class Method(dj.Lookup):
    definition = """
    method : varchar(16)
    """
    contents = [("fast",), ("slow",)]
@schema
class Result(dj.Manual):
    definition = """
    -> Session
    -> Method
    ---
    score : float32
    """
Subject.insert([(i, "FMU"[i % 3], datetime.date(2024, 1, i + 1), {"w": i}) for i in range(1, 5)])
Session.insert([(s % 4 + 1, s, datetime.datetime(2025, 1, 2, 3, 4, 5, 6000), f"it's {s}\\n", bytes([s, 0, 255]))
                for s in range(10)])
Session.Channel.insert([(s % 4 + 1, s, c, 0.5 * c) for s in range(10) for c in range(3)])
Result.insert([(s % 4 + 1, s, m, 1.25 * s) for s in range(10) for m in ("fast", "slow") if s % 2 == 0])
restr = "session_id >= 6"


def keys(query):
    return sorted(list(k.values()) for k in query.keys())  # noqa: SIM118 (DataJoint's keys(), not a dict's)


leaf = Result & restr
out = {
    "tables": {t.full_table_name: None for t in (Subject, Session, Session.Channel, Method, Result)},
    "leaf": Result.full_table_name,
    "keys": {
        "result": keys(leaf),
        "session": keys(Session & leaf.proj()),
        "subject": keys(Subject & leaf.proj()),
        "method": keys(Method & leaf.proj()),
        "channel": keys(Session.Channel & (Session & leaf.proj()).proj()),
    },
}
print(json.dumps(out, default=str))
if os.environ.get("RECORD"):  # djtui.record_export on PostgreSQL: the same fetches, noted as leaves
    from djtui import record_export

    fetched = [Result & restr, Session * Subject & "sex = 'M'", Session & {"subject_id": 1}]
    with record_export(os.environ["RECORD"]):
        for query in fetched:
            query.to_dicts()
    out["recorded_sessions"] = sorted({tuple(k) for q in fetched[1:] for k in keys(Session & q.proj())}
                                      | {tuple(k) for k in out["keys"]["session"]})
    print(json.dumps(out, default=str))
