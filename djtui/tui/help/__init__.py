"""What a person needs to know on each screen, shown by ``?`` under the screen's keys.

``TEXTS`` holds one text per screen, keyed by the screen's name (its title in lower case: sessions,
transfers, orphans, export, accounts, backups). A screen may declare its own ``HELP`` instead.
Texts are Rich markup, one logical line each (a trailing backslash continues a source line; the help
screen wraps them to the terminal): a heading at column 0, ``  [b]term[/b]  meaning`` items, indented
paragraphs, and examples indented by four. The rules they state are the code's (djtui.domain.sessions for Safe,
djtui.domain.leaves for leaves, djtui.services.orphans for the share guard). Imports nothing of djtui.
"""

from __future__ import annotations

SESSIONS = """\
[b]Columns[/b]
  [b]DJ[/b]  the database holds the session (every table djtui checks has it); the detail (Enter) names what \
is missing
  [b]Backup[/b]  every enabled destination holds every file of the session with the same size
  [b]Verified[/b]  the sizes match now, a passing verification record (v) still matches the source files, and \
no checksum verify found a content difference
  [b]Safe[/b]  the local copy may be deleted (the rule below); – : not on local disk, nothing to delete
  [b]⚠[/b]  look closer: Backup ⚠ is a partial backup (some files at a destination) or a destination mount \
that does not answer; Verified ⚠ means the sizes match but no current verification proves it: press v
[b]The Safe rule[/b] (the delete checks it again at the moment of deleting)
  Safe = DJ ✓ and Backup ✓ and Verified ✓, the session folder holds at least one file, and it holds no \
special files (sockets, devices: never backed up) and no symbolic links.
  Enter shows every reason a session is not safe. Delete (d, D) needs Safe and a typed confirmation.
[b]Finding sessions[/b]
  The from / to fields take dates as YYYYMMDD; / filters by participant or date; o changes the sort column, O \
reverses it; space selects rows for the bulk actions (s sync, v verify, D bulk delete)."""

TRANSFERS = """\
[b]The queue[/b]
  Sync (s on Sessions) and verify (v) jobs run here in the background while you use other screens. A job \
copies with rsync to one destination; its row shows state, progress, speed and the time left (ETA).
[b]Actions[/b]
  [b]Cancel[/b] (c)  stops the highlighted running or queued job; what rsync copied stays, and a later sync \
continues from there. Quitting with jobs running asks first.
  [b]Retry[/b] (t)  queues a failed or cancelled job again as a new row ("retry of #N"); under read-only a \
sync retry is refused (it writes), a verify retry is not.
  [b]Clear finished[/b] (x)  hides the done, failed and cancelled jobs from this list; running ones stay."""

ORPHANS = """\
[b]What an orphan is[/b]
  Something a source (a configured table, an external store, a directory, an object store) holds that \
nothing in the database uses. Each object is listed once, with all its reasons:
  [b]orphan-row[/b]  a row of a configured table that no foreign key of any schema references
  [b]unused-row[/b]  an ~external row no table uses
  [b]missing-object[/b]  an ~external row whose file or object is gone
  [b]untracked-*[/b]  a file or object no row names
  [b]zero-byte[/b]  an empty file or object
  [b]stale-temp[/b]  a temporary file older than orphans.temp_max_age_days
[b]Actions[/b]
  [b]Quarantine[/b] (Q)  rows are saved whole into a row batch and deleted in one transaction; files are \
moved into the quarantine folder. Every item is checked again at the moment of action, under a lock, and \
audited.
  [b]Restore[/b] (R)  on the quarantine tab (z): moves a batch's files back where they were and inserts its \
rows again.
  [b]Purge[/b] (P)  deletes quarantined batches older than orphans.purge_after_days for good: the one step \
that cannot be undone.
[b]The share guard[/b]
  A source where more than orphans.max_share (20% by default) of its rows or files would be removed is \
refused: a wrong store location or table makes everything look orphaned. Check the config first; the CLI's \
--max-share overrides it.
[b]The items list[/b]
  space selects an item, a selects them all; Q then acts on the selection (or on every item of the source)."""

EXPORT = """\
[b]A leaf[/b]
  A table and which of its rows to export, written db.table:RESTRICTION, for example
    lab_session.session:subject_id = 3
    common_ephys.LFPBand:{"nwb_file_name": "a.nwb"}
  The table is named by SQL name (schema.table) or by DataJoint class (schema.ClassName, parts as \
Master.Part). Every row the leaf's rows depend on (their ancestors) is exported with them.
[b]A restriction[/b]
  A SQL condition on the table's columns (subject_id = 3 AND session_date > '2024-01-01'), or JSON key \
values: {"a": 1} means a = 1, {"a": [1, 2]} means a IN (1, 2), a list of objects means OR. Empty: every row. \
Refused: ; between statements, comments, open quotes, unbalanced parentheses.
[b]Steps[/b]
  / searches the tables (Enter or ↓ goes into the list; the highlighted table is the one picked); r types its \
restriction, and Enter adds the leaf with its row count; x removes the highlighted leaf; l loads leaves from \
a paper log or a leaves file; i shows DataJoint's internal tables (~log, ~external_*); f shows the files the \
export refers to.
[b]Write[/b] (w), into a new, empty directory
  [b]sql[/b]  export.sql, to load with the mysql client
  [b]script[/b]  export.sh: mysqldump runs on a machine of yours, with your credentials
  [b]docker[/b]  a MySQL 8.0 container that loads the export
  v verifies a written export; m saves the dependency graph (Mermaid)."""

ACCOUNTS = """\
[b]The four roles[/b] (each user holds one)
  [b]dj_guest[/b]  reads (SELECT) the lab's schemas; owns nothing
  [b]dj_collab[/b]  reads, and has ALL on its own schemas (<user>_...)
  [b]dj_user[/b]  reads, ALL on its own schemas, and ALL on the shared module prefixes (m adds a module)
  [b]dj_admin[/b]  ALL on every schema
[b]Grant matrix[/b]
  What each managed user can do: [b]own[/b] on their own schemas (<user>_...), [b]other[/b] on a schema of no \
module and not theirs, then one column per shared module (ALL create tables, RW write rows, R read, - nothing). \
When the modules do not fit the width they are cut to short prefixes, named in full under the title; the user \
column stays put when the table scrolls sideways. A user name longer than the room left ends in …; the \
line under the table names the highlighted account in full. A name shows its host only when it has two.
[b]Drift[/b]
  The difference between what a user or a role holds and what its role says it should hold, shown as +/- \
lines for the highlighted row. f fixes it, showing the exact SQL first; i creates the roles or fixes them.
[b]Changes[/b]
  a add user, e set role, p reset password (shown once; c copies it), l lock/unlock, d drop: each shows its \
SQL plan (passwords as ****) and runs only after y."""

BACKUPS = """\
[b]Dumps[/b]
  b runs a backup: every schema dumped in parallel plus the whole server, into a dated folder (then copied to \
dbbackup.remote if set). The table lists each dump with its size, age and whether it is verified.
[b]Actions[/b]
  [b]Verify[/b] (v)  checks the files' hashes, restores every schema into a fresh private server and compares \
row counts; a pass writes verified.json into the dump's folder.
  [b]Restore[/b] (R)  loads dumps into the server: shows which schemas it overwrites and what the dump's \
foreign keys need, then asks for a typed word (OVERWRITE N SCHEMAS / RESTORE).
  [b]Prune[/b] (p)  removes the backups outside the retention policy (dbbackup.keep_daily / keep_weekly / \
keep_monthly: 7 / 4 / 6 by default), listed first, after typing PRUNE."""


TEXTS: dict[str, str] = {
    "sessions": SESSIONS,
    "transfers": TRANSFERS,
    "orphans": ORPHANS,
    "export": EXPORT,
    "accounts": ACCOUNTS,
    "backups": BACKUPS,
}


def help_text(screen: object) -> str:
    """The screen's own ``HELP``, else the text kept here for its title."""
    own = getattr(screen, "HELP", "")
    if own:
        return own
    return TEXTS.get(str(getattr(screen, "SCREEN_TITLE", "")).lower(), "")
