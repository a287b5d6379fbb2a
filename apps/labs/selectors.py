"""Reads of labs, memberships and tokens, always scoped to the asking user."""

from __future__ import annotations

from django.db import connections, router
from django.db.models import QuerySet
from django.utils import timezone

from apps.labs.models import ApiToken, Invitation, Lab, Membership, User


def lab_list_for_user(*, user: User) -> QuerySet[Lab]:
    """The labs ``user`` belongs to."""
    if not user.is_authenticated:
        return Lab.objects.none()
    return Lab.objects.filter(memberships__user=user).distinct()


def lab_roles_for_user(*, user: User) -> dict[int, str]:
    """``{lab_id: role}`` for every lab ``user`` belongs to."""
    if not user.is_authenticated:
        return {}
    return dict(Membership.objects.filter(user=user).values_list("lab_id", "role"))


def membership_role(*, user: User, lab: Lab | int) -> str | None:
    """The role of ``user`` in ``lab``, or None when not a member."""
    if not user.is_authenticated:
        return None
    lab_id = lab if isinstance(lab, int) else lab.pk
    return lab_roles_for_user(user=user).get(lab_id)


def membership_list(*, user: User, lab: Lab | None = None) -> QuerySet[Membership]:
    """Memberships of the labs ``user`` belongs to (optionally of one lab)."""
    memberships = Membership.objects.filter(lab__in=lab_list_for_user(user=user)).select_related(
        "user", "lab"
    )
    if lab is not None:
        memberships = memberships.filter(lab=lab)
    return memberships


def invitation_list(*, user: User) -> QuerySet[Invitation]:
    """Invitations to the labs ``user`` belongs to (whether ``user`` may manage them or not)."""
    return Invitation.objects.filter(lab__in=lab_list_for_user(user=user)).select_related(
        "lab", "invited_by"
    )


def invitation_list_pending(*, user: User, lab: Lab) -> QuerySet[Invitation]:
    """The pending invitations of ``lab``, if ``user`` belongs to it: newest first."""
    return invitation_list(user=user).filter(
        lab=lab,
        accepted_at__isnull=True,
        revoked_at__isnull=True,
        expires_at__gt=timezone.now(),
    )


def api_token_list(*, user: User) -> QuerySet[ApiToken]:
    """The personal API tokens of ``user``, newest first."""
    if not user.is_authenticated:
        return ApiToken.objects.none()
    return ApiToken.objects.filter(user=user)


def api_token_by_hash(*, key_hash: str) -> ApiToken | None:
    """The token whose key hashes to ``key_hash`` with its user (cached on it, as
    ``select_related`` would) and ``lab_roles``, its user's ``{lab_id: role}``; None if none.

    Every API request asks this, and through the ORM it cost more CPU than any other part of a
    read (2 to 3 ms on a 2-core AMD EPYC, most of it compiling the query), so it is one SQL
    statement written once per database vendor: the token joined to its user and, one row per
    membership, to the memberships. Values go through the converters the ORM would apply
    (SQLite's dates are text) and rows become model instances through ``Model.from_db``.
    """
    conn = connections[router.db_for_read(ApiToken)]
    token_fields, user_fields = ApiToken._meta.concrete_fields, User._meta.concrete_fields
    with conn.cursor() as cursor:
        cursor.execute(_token_sql(conn), [key_hash])
        rows = cursor.fetchall()
    if not rows:
        return None
    n = len(token_fields)
    token_values = _converted(conn, token_fields, "t", rows[0][:n])
    user_values = _converted(conn, user_fields, "u", rows[0][n : n + len(user_fields)])
    token = ApiToken.from_db(conn.alias, [f.attname for f in token_fields], token_values)
    user = User.from_db(conn.alias, [f.attname for f in user_fields], user_values)
    ApiToken._meta.get_field("user").set_cached_value(token, user)
    token.lab_roles = {row[-2]: row[-1] for row in rows if row[-2] is not None}
    return token


_TOKEN_SQL: dict[str, str] = {}  # by database vendor


def _token_sql(conn) -> str:
    sql = _TOKEN_SQL.get(conn.vendor)
    if sql is None:
        q = conn.ops.quote_name

        def cols(model, alias: str) -> list[str]:
            return [f"{alias}.{q(f.column)}" for f in model._meta.concrete_fields]

        user_pk, token_user = q(User._meta.pk.column), q(ApiToken._meta.get_field("user").column)
        member_user = q(Membership._meta.get_field("user").column)
        member_lab = q(Membership._meta.get_field("lab").column)
        columns = [*cols(ApiToken, "t"), *cols(User, "u"), f"m.{member_lab}", f"m.{q('role')}"]
        sql = _TOKEN_SQL[conn.vendor] = (
            f"SELECT {', '.join(columns)} FROM {q(ApiToken._meta.db_table)} t"
            f" INNER JOIN {q(User._meta.db_table)} u ON u.{user_pk} = t.{token_user}"
            f" LEFT OUTER JOIN {q(Membership._meta.db_table)} m ON m.{member_user} = u.{user_pk}"
            f" WHERE t.{q('key_hash')} = %s"
        )
    return sql


def _converted(conn, fields, alias: str, values) -> list:
    out = []
    for field, value in zip(fields, values, strict=True):
        col = field.get_col(alias)
        for convert in conn.ops.get_db_converters(col) + field.get_db_converters(conn):
            value = convert(value, col, conn)
        out.append(value)
    return out
