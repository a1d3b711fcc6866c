"""Applying a plan: statement by statement on a connection of its own, under the accounts lock,
re-planned at the moment of action, audited; passwords travel as parameters and are registered
as secrets; what ran is undone when a later statement fails."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path

from djtui.domain import grants as g
from djtui.errors import OperationFailed, UserError
from djtui.services import commandlog
from djtui.services.accounts.admin import UserAdmin
from djtui.services.audit import AuditLog, db_user_of
from djtui.services.locks import exclusive
from djtui.services.testhook import pause_between_items


class AccountsService(UserAdmin):
    """Read, plan and apply account changes for one server, following ``accounts:`` in the config."""

    def apply(self, plan: g.Plan, *, audit: AuditLog | None = None, state_dir: Path | None = None,
              action: str = "accounts", target: str | None = None,
              recheck: Callable[[], g.Plan] | None = None, **details: object) -> int:
        """Run the plan's statements in order, under the accounts lock, audited; return how many ran.

        ``target`` is the user or role acted on; the actor (OS user, database user, host) is the
        audit log's own field, so a detail such as ``user=alice`` never stands in for who acted.
        ``recheck`` plans again under the lock, at the moment of action: if the server changed
        since the plan was shown (someone granted or revoked by hand), nothing runs.
        """
        if plan.empty:
            return 0
        if self.db.readonly:
            raise UserError("refused: account changes write, and djtui is running read-only",
                            hint="drop --readonly to allow writes")
        lock = exclusive(state_dir, "accounts", purpose=plan.title) if state_dir else nullcontext()
        with lock:
            if recheck is not None:
                fresh = recheck()
                if [s.sql for s in fresh.statements] != [s.sql for s in plan.statements]:
                    raise OperationFailed(f"{plan.title}: the server changed since the plan was shown; nothing "
                                          "was changed. The plan now would be:\n" + fresh.render())
            if audit is not None:
                with audit.action(action, target=target or plan.title, db_user=db_user_of(self.db),
                                  plan=plan.title, statements=[s.sql for s in plan.statements], **details) as rec:
                    done = self._execute(plan)
                    rec.outcome("ok", statements_run=done)
                    return done
            return self._execute(plan)

    async def aapply(self, plan: g.Plan, **kw: object) -> int:
        return await self.db.run(lambda: self.apply(plan, **kw))  # type: ignore[arg-type]

    def _execute(self, plan: g.Plan) -> int:
        """Statements in order; on a failure, the undo of those that ran, newest first.

        Account statements commit one by one (DDL), so a dropped connection half-way would
        leave, say, a user without its role; the undo (``DROP USER`` for a new account)
        puts the server back. Plans that only grant or revoke converge: running them again
        finishes the job.
        """
        conn = self.db.connect()
        done: list[g.Statement] = []
        try:
            with self.db.watched(conn, "applying the account plan"), conn.cursor() as cur:
                for n, st in enumerate(plan.statements):
                    if n:
                        pause_between_items()
                    sql, args = st.executable()
                    commandlog.record("sql", st.sql)
                    try:
                        cur.execute(sql, args)
                    except self.db.backend.driver_error as exc:
                        code, msg = _error_of(exc)
                        ran = f"{len(done)} of {len(plan.statements)} statements ran before it"
                        if self.db.backend.connection_lost(exc):  # no answer at all: nothing was refused
                            raise OperationFailed(f"the connection to the server was lost during `{st.sql}`: {msg}; "
                                                  f"{ran}{self._undo(done)}") from None
                        why = self._role_denied_advice(st.sql, code)
                        shown = f"({code}) " if code != "?" else ""
                        raise OperationFailed(f"the server refused `{st.sql}`: {shown}{msg}; {ran}"
                                              f"{self._undo(done)}{why}") from None
                    done.append(st)
        finally:
            conn.close()
        return len(done)

    def _role_denied_advice(self, sql: str, code: object) -> str:
        """Why granting a role was refused ("(1698) Access denied" says nothing) and how to fix it."""
        target = g.role_of_grant(sql)
        if target is None or code not in (1698, 1045, 1227, 1044, 3523):
            return ""
        role = target[0]
        d = self.db.backend.grant_dialect(partial_revokes=False)
        me = self.db.server_info().current_user
        try:
            admins = self.db.backend.role_admins(role)
        except (self.db.backend.driver_error, UserError):
            admins = ["(unknown)"]
        return f"\n  why: {g.role_admin_advice(d, role, me, admins)}"

    def _undo(self, done: Sequence[g.Statement]) -> str:
        """Undo what ran, on a fresh connection (the old one may be the one that was killed)."""
        undo = [st.undo for st in reversed(done) if st.undo]
        if not undo:
            return "; run the same command again to finish it (plans converge)" if done else ""
        try:
            conn = self.db.connect()
        except UserError as exc:
            return f"; could not undo ({exc.what}): run by hand: {'; '.join(undo)}"
        try:
            with self.db.watched(conn, "undoing the account plan"), conn.cursor() as cur:
                for sql in undo:
                    commandlog.record("sql", sql)
                    cur.execute(sql)
        except self.db.backend.driver_error as exc:
            return f"; undo failed ({commandlog.mask(str(exc))}): run by hand: {'; '.join(undo)}"
        except UserError as exc:  # the server stopped answering, or Cancel-wait
            return f"; undo failed ({exc.what}): run by hand: {'; '.join(undo)}"
        finally:
            conn.close()
        return f"; undone: {'; '.join(undo)}"




def _error_of(exc: BaseException) -> tuple[object, str]:
    """The server's code and message, masked: pymysql's ``(code, message)`` or psycopg2's SQLSTATE."""
    pgcode = getattr(exc, "pgcode", None)
    if pgcode is not None:
        return pgcode, commandlog.mask(str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc))
    args = getattr(exc, "args", ())
    if len(args) > 1:
        return args[0], commandlog.mask(str(args[1]))
    text = str(exc).strip()  # a driver error with its message only (libpq's, a lost connection)
    return "?", commandlog.mask(text.splitlines()[0] if text else repr(exc))
