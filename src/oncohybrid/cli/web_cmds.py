"""``oncohybrid serve`` and ``oncohybrid user add|ls|disable|enable|delete|reset-password``:
the reading-room web application and its local accounts."""

from __future__ import annotations

import json
import sys

import typer


def register(app: typer.Typer) -> None:
    user_app = typer.Typer(help="Local accounts of the web application.", no_args_is_help=True)
    app.add_typer(user_app, name="user")

    @app.command("serve")
    def serve_cmd(
        host: str = typer.Option("127.0.0.1", help="Address to bind (loopback by default)."),
        port: int = typer.Option(8000, help="TCP port."),
    ) -> None:
        """Serve the reading room (worklist, timeline, PET/CT viewer) over HTTP."""
        from oncohybrid.config import get_settings
        from oncohybrid.errors import OncohybridError

        try:
            from oncohybrid.web.app import serve

            settings = get_settings()
            typer.echo(f"oncohybrid reading room on http://{host}:{port}/", err=True)
            serve(settings, host, port)
        except OncohybridError as exc:
            from oncohybrid.cli.main import fail

            fail(exc)

    @user_app.command("add")
    def user_add(
        username: str = typer.Argument(..., help="Sign-in name."),
        role: str = typer.Option(..., help="physician, fellow, researcher or admin."),
        password_stdin: bool = typer.Option(
            False, "--password-stdin", help="Read the password from the first line of stdin."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print JSON only."),
    ) -> None:
        """Create an account (asks for the password unless --password-stdin)."""
        from oncohybrid.config import get_settings
        from oncohybrid.errors import OncohybridError
        from oncohybrid.services.users import add_user

        if password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        else:
            password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
        try:
            info = add_user(get_settings(), username, password, role, actor="cli")
        except OncohybridError as exc:
            from oncohybrid.cli.main import fail

            fail(exc)
            return
        if as_json:
            typer.echo(json.dumps({"username": info.username, "role": info.role.value}))
        else:
            typer.echo(f"created {info.username} ({info.role.value})", err=True)

    @user_app.command("ls")
    def user_ls(as_json: bool = typer.Option(False, "--json", help="Print JSON only.")) -> None:
        """List accounts."""
        from oncohybrid.config import get_settings
        from oncohybrid.errors import OncohybridError
        from oncohybrid.services.users import list_users

        try:
            rows = list_users(get_settings())
        except OncohybridError as exc:
            from oncohybrid.cli.main import fail

            fail(exc)
            return
        if as_json:
            typer.echo(json.dumps(rows))
            return
        from rich.console import Console
        from rich.table import Table

        table = Table("user", "role", "active", "created", "last sign-in")
        for r in rows:
            table.add_row(r["username"], r["role"], "yes" if r["active"] else "no",
                          r["created_at"], r["last_login_at"] or "—")
        Console().print(table)

    def _user_action(name: str, fn, done: str) -> None:  # noqa: ANN001
        from oncohybrid.config import get_settings
        from oncohybrid.errors import OncohybridError

        try:
            fn(get_settings(), name)
        except OncohybridError as exc:
            from oncohybrid.cli.main import fail

            fail(exc)
            return
        typer.echo(f"{name}: {done}", err=True)

    @user_app.command("disable")
    def user_disable(username: str = typer.Argument(..., help="Sign-in name (any case).")
                     ) -> None:
        """Disable an account: its sessions end and it cannot sign in."""
        from oncohybrid.services.users import set_active

        _user_action(username, lambda s, n: set_active(s, n, False, actor="cli"), "disabled")

    @user_app.command("enable")
    def user_enable(username: str = typer.Argument(..., help="Sign-in name (any case).")
                    ) -> None:
        """Enable an account again (also lifts a sign-in lockout)."""
        from oncohybrid.services.users import set_active

        _user_action(username, lambda s, n: set_active(s, n, True, actor="cli"), "enabled")

    @user_app.command("delete")
    def user_delete(username: str = typer.Argument(..., help="Sign-in name (any case).")
                    ) -> None:
        """Delete an account (its audit entries stay)."""
        from oncohybrid.services.users import delete_user

        _user_action(username, lambda s, n: delete_user(s, n, actor="cli"), "deleted")

    @user_app.command("reset-password")
    def user_reset_password(
        username: str = typer.Argument(..., help="Sign-in name (any case)."),
        password_stdin: bool = typer.Option(
            False, "--password-stdin", help="Read the password from the first line of stdin."
        ),
    ) -> None:
        """Set a new password (ends the account's sessions, lifts a sign-in lockout)."""
        from oncohybrid.services.users import set_password

        if password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        else:
            password = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
        _user_action(username, lambda s, n: set_password(s, n, password, actor="cli"),
                     "password reset")
