"""`djtui roles ...`, `djtui users ...` and `djtui passwd`: the lab's accounts from a shell.

Every change prints its plan (the exact SQL, passwords as '****') before it
runs; ``--dry-run`` stops there.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import TYPE_CHECKING

from djtui.cli.context import Context
from djtui.cli.output import emit_json, render_table
from djtui.domain import grants as g
from djtui.errors import UserError

if TYPE_CHECKING:
    from djtui.services.accounts import AccountsService


def register(sub: argparse._SubParsersAction) -> None:
    roles = sub.add_parser("roles", help="the four djtui roles (dj_guest, dj_collab, dj_user, dj_admin)")
    rsub = roles.add_subparsers(dest="roles_command", metavar="ACTION", required=True)
    p = rsub.add_parser("init", help="create the roles and bring their grants to the definition "
                                     "(grant what is missing, then revoke what is held beyond it)")
    p.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    p.set_defaults(func=roles_init)
    p = rsub.add_parser("add-module", help="give dj_user ALL on a new shared module prefix")
    p.add_argument("name", help="the module's schema prefix, e.g. spikesorting")
    p.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    p.set_defaults(func=roles_add_module)

    users = sub.add_parser("users", help="database users: list, add, check and fix drift, set roles, lock, drop, "
                                         "reset passwords")
    usub = users.add_subparsers(dest="users_command", metavar="ACTION", required=True)
    p = usub.add_parser("list", help="users with their role, host, default role and drift")
    p.add_argument("--json", action="store_true", help="print users and roles as JSON")
    p.set_defaults(func=users_list)
    p = usub.add_parser("add", help="create a user with one of the roles")
    p.add_argument("name")
    p.add_argument("--role", required=True, choices=g.KINDS)
    p.add_argument("--host", default=None, help="host pattern (default: accounts.default_host); MySQL and MariaDB "
                                                "only: PostgreSQL accounts have no host (pg_hba.conf decides)")
    p.add_argument("--password-stdin", action="store_true",
                   help="read the password from stdin instead of generating one")
    p.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    p.set_defaults(func=users_add)
    p = usub.add_parser("check", help="compare roles and users with the expected grants (exit 1 on drift; "
                                      "warns when roles can read the `mysql` schema)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=users_check)
    p = usub.add_parser("fix", help="bring users and roles back to their definition: revoke what they hold "
                                    "beyond it, grant what is missing (plan first, typed confirmation FIX)")
    p.add_argument("names", nargs="*", metavar="USER|ROLE",
                   help="users (NAME or NAME@HOST) and roles (dj_user ...); none: everything that drifted")
    p.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    p.add_argument("--confirm", metavar="FIX", help="confirm without a terminal: --confirm FIX")
    p.set_defaults(func=users_fix)
    p = usub.add_parser("set-role", help="give a user another djtui role (the old one is revoked)")
    p.add_argument("name")
    p.add_argument("role", choices=g.KINDS)
    p.add_argument("--host", default=None, help="the account's host, when the user has several")
    p.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    p.add_argument("--confirm", metavar="NAME", help="confirm without a terminal: the user's name")
    p.set_defaults(func=users_set_role)
    for verb, what in (("lock", "lock an account: it keeps its grants and cannot log in (ACCOUNT LOCK)"),
                       ("unlock", "unlock a locked account (ACCOUNT UNLOCK)")):
        p = usub.add_parser(verb, help=what)
        p.add_argument("name")
        p.add_argument("--host", default=None, help="the account's host, when the user has several")
        p.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
        p.add_argument("--confirm", metavar="NAME", help="confirm without a terminal: the user's name")
        p.set_defaults(func=users_lock, locked=verb == "lock")
    p = usub.add_parser("drop", help="drop a user: the account, its grants and roles (its schemas stay)")
    p.add_argument("name")
    p.add_argument("--host", default=None, help="the account's host, when the user has several")
    p.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    p.add_argument("--confirm", metavar="'DROP NAME'", help="confirm without a terminal: --confirm 'DROP NAME'")
    p.set_defaults(func=users_drop)
    p = usub.add_parser("reset-password", help="give a user a new generated password, shown once")
    p.add_argument("name")
    p.add_argument("--host", default=None, help="the account's host, when the user has several")
    p.add_argument("--password-stdin", action="store_true", help="read the new password from stdin")
    p.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    p.set_defaults(func=users_reset_password)

    p = sub.add_parser("passwd", help="change your own database password (prompted, not echoed)")
    p.add_argument("--password-stdin", action="store_true", help="read the new password from stdin")
    p.set_defaults(func=passwd)


def _service(ctx: Context) -> AccountsService:
    from djtui.services.accounts import AccountsService
    return AccountsService(ctx.db, ctx.config.accounts)


def _apply(ctx: Context, service: AccountsService, plan: g.Plan, *, dry_run: bool, action: str,
           target: str | None = None, **details: object) -> int:
    from djtui.services.audit import AuditLog
    print(plan.render())
    if dry_run or plan.empty:
        if dry_run and not plan.empty:
            print("dry run: nothing was changed")
        return 0
    ctx.require_writable(plan.title)
    ctx.announce_foreign_server()
    done = service.apply(plan, audit=AuditLog(ctx.config.audit_log), state_dir=ctx.config.state_dir,
                         action=action, target=target, **details)
    print(f"done: {done} statement(s) ran")
    return 0


def _confirmed_apply(ctx: Context, service: AccountsService, plan: g.Plan, word: str, *, action: str,
                     target: str, recheck, **details: object) -> int:
    """Plan shown, dry run stops; else read-only refused, typed confirmation, re-planned under the lock, audited."""
    from djtui.cli.output import confirm_typed
    from djtui.services.audit import AuditLog
    print(plan.render())
    if plan.empty:
        return 0
    if ctx.args.dry_run:
        print("dry run: nothing was changed")
        return 0
    ctx.require_writable(plan.title)
    ctx.announce_foreign_server()
    confirm_typed(word, ctx.args.confirm, f"{plan.title}: {len(plan.statements)} statement(s)")
    done = service.apply(plan, audit=AuditLog(ctx.config.audit_log), state_dir=ctx.config.state_dir,
                         action=action, target=target, recheck=recheck, **details)
    print(f"done: {done} statement(s) ran")
    return 0


def _writable_unless_dry(ctx: Context, what: str) -> None:
    """Read-only refuses before anything is read: one rule, whatever the plan would be."""
    if not ctx.args.dry_run:
        ctx.require_writable(what)


def users_fix(ctx: Context) -> int:
    _writable_unless_dry(ctx, "users fix")
    service = _service(ctx)
    names = tuple(ctx.args.names)
    plan = service.plan_fix(names)
    return _confirmed_apply(ctx, service, plan, "FIX", action="users-fix", target=" ".join(names) or "all drift",
                            recheck=lambda: service.plan_fix(names), names=list(names))


def users_set_role(ctx: Context) -> int:
    _writable_unless_dry(ctx, "users set-role")
    service = _service(ctx)
    a = ctx.args
    plan = service.plan_set_role(a.name, a.role, host=a.host)
    return _confirmed_apply(ctx, service, plan, a.name.partition("@")[0], action="users-set-role",
                            target=plan.target, user=a.name, role=a.role,
                            recheck=lambda: service.plan_set_role(a.name, a.role, host=a.host))


def users_lock(ctx: Context) -> int:
    _writable_unless_dry(ctx, "users lock" if ctx.args.locked else "users unlock")
    service = _service(ctx)
    a = ctx.args
    plan = service.plan_lock(a.name, host=a.host, locked=a.locked)
    return _confirmed_apply(ctx, service, plan, a.name.partition("@")[0],
                            action="users-lock" if a.locked else "users-unlock", target=plan.target,
                            user=a.name, recheck=lambda: service.plan_lock(a.name, host=a.host, locked=a.locked))


def users_drop(ctx: Context) -> int:
    _writable_unless_dry(ctx, "users drop")
    service = _service(ctx)
    a = ctx.args
    plan = service.plan_drop(a.name, host=a.host)
    return _confirmed_apply(ctx, service, plan, f"DROP {a.name.partition('@')[0]}", action="users-drop",
                            target=plan.target, user=a.name,
                            recheck=lambda: service.plan_drop(a.name, host=a.host))


def _read_password_stdin() -> str:
    line = sys.stdin.readline()
    if not line:
        raise UserError("no password on stdin", where="--password-stdin", hint="pipe the password in, one line")
    return line.rstrip("\r\n")


def roles_init(ctx: Context) -> int:
    if not ctx.args.dry_run:
        ctx.require_writable("roles init")
    service = _service(ctx)
    return _apply(ctx, service, service.plan_roles_init(), dry_run=ctx.args.dry_run, action="roles-init")


def roles_add_module(ctx: Context) -> int:
    g.validate_module_name(ctx.args.name, where="roles add-module NAME")
    if not ctx.args.dry_run:
        ctx.require_writable("roles add-module")
    service = _service(ctx)
    return _apply(ctx, service, service.plan_add_module(ctx.args.name), dry_run=ctx.args.dry_run,
                  action="roles-add-module", target=ctx.args.name, module=ctx.args.name)


def users_list(ctx: Context) -> int:
    state = _service(ctx).read()
    if ctx.json:
        emit_json(state.to_json())
        return 0
    rows = [(u.user, u.host, u.role or "-", "✓" if u.default_active else ("✗" if u.kind else "-"),
             "locked" if u.locked else "-", ("✗ " + str(len(u.drift))) if u.drift else ("✓" if u.kind else "-"))
            for u in state.users]
    print(render_table(("user", "host", "role", "role at login", "locked", "drift"), rows))
    print()
    for r in state.roles:
        status = "missing" if not r.exists else (f"drift: {len(r.drift)}" if r.drift else "ok")
        print(f"{r.name}: {status}; held by {len(r.holders)}")
    for note in state.notes:
        print(f"note: {note}")
    for warning in state.warnings:
        print(f"⚠ {warning}")
    return 0


def users_check(ctx: Context) -> int:
    """Expected against actual, per role and per user; exit 1 on any difference, either way."""
    state = _service(ctx).read()
    drift = state.drift
    roles = [r for r in state.roles if r.drift]
    users = [u for u in state.users if u.drift]
    if ctx.json:
        emit_json({"ok": not drift, "drift": drift, "warnings": list(state.warnings),
                   "server": f"{state.flavor} {state.version}",
                   "roles": [{"name": r.name, "exists": r.exists, "diff": list(r.drift),
                              **({k: v for k, v in r.diff.to_json(state.flavor).items() if k != "diff"}
                                 if r.diff else {})} for r in roles],
                   "users": [{"account": u.account, "user": u.user, "host": u.host, "role": u.role,
                              "diff": list(u.drift),
                              **({k: v for k, v in u.diff.to_json(state.flavor).items() if k != "diff"}
                                 if u.diff else {})} for u in users]})
        return 1 if drift else 0
    for r in roles:
        if not r.exists:
            print(f"✗ role {r.name}: missing (`djtui roles init` creates it)")
            continue
        print(f"✗ role {r.name}: {len(r.drift)} difference(s) from its definition (+ held beyond it, - missing)")
        print("\n".join(f"    {line}" for line in r.drift))
    for u in users:
        print(f"✗ user {u.account} ({u.role}): {len(u.drift)} difference(s) (+ held beyond the role, - missing)")
        print("\n".join(f"    {line}" for line in u.drift))
    if drift:
        print(f"\n{state.drift_summary()}: {len(drift)} difference(s) from the expected grants; "
              "`djtui users fix [USER|ROLE ...] --dry-run` shows the SQL that brings them back")
    else:
        print(f"✓ {len(state.users)} users and {len(state.roles)} roles match the expected grants")
    for warning in state.warnings:
        print(f"⚠ {warning}", file=sys.stderr)
    return 1 if drift else 0


def users_add(ctx: Context) -> int:
    g.validate_user_name(ctx.args.name, where="users add NAME")
    if ctx.args.host is not None:
        g.validate_host(ctx.args.host, where="--host")
    if not ctx.args.dry_run:
        ctx.require_writable("users add")
    password = _read_password_stdin() if ctx.args.password_stdin else None
    service = _service(ctx)
    plan, pw = service.plan_add_user(ctx.args.name, ctx.args.role, host=ctx.args.host, password=password)
    code = _apply(ctx, service, plan, dry_run=ctx.args.dry_run, action="users-add", target=ctx.args.name,
                  user=ctx.args.name, role=ctx.args.role)
    if not ctx.args.dry_run and password is None:
        _show_once(ctx.args.name, pw)
    return code


def users_reset_password(ctx: Context) -> int:
    g.validate_user_name(ctx.args.name, where="users reset-password NAME")
    if not ctx.args.dry_run:
        ctx.require_writable("users reset-password")
    password = _read_password_stdin() if ctx.args.password_stdin else None
    service = _service(ctx)
    plan, pw = service.plan_reset_password(ctx.args.name, host=ctx.args.host, password=password)
    code = _apply(ctx, service, plan, dry_run=ctx.args.dry_run, action="users-reset-password",
                  target=ctx.args.name, user=ctx.args.name)
    if not ctx.args.dry_run and password is None:
        _show_once(ctx.args.name, pw)
    return code


def _show_once(user: str, password: str) -> None:
    # the one place a generated password is shown: straight to the terminal, never logged
    sys.stdout.write(f"\npassword for {user}: {password}\n(shown once: give it to {user} now; "
                     f"they can change it with `djtui passwd`)\n")


def passwd(ctx: Context) -> int:
    ctx.require_writable("passwd")
    if ctx.args.password_stdin:
        new = _read_password_stdin()
    else:
        if not sys.stdin.isatty():
            raise UserError("passwd prompts on a terminal", hint="use --password-stdin to pipe the new password")
        new = getpass.getpass("New password: ")
        if getpass.getpass("Again: ") != new:
            raise UserError("the two passwords differ", where="passwd", hint="nothing was changed; try again")
    service = _service(ctx)
    plan = service.plan_passwd(new)
    code = _apply(ctx, service, plan, dry_run=False, action="passwd", target=service.db.settings.user)
    print("your password is changed; update DJ_PASS / .secrets/ / dj_local_conf.json where you keep it")
    return code
