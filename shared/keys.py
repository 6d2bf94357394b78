"""Every Redis key SSMGlobal uses is built here, and only here.

Related keys share a ``{hash tag}`` so each group can live on one Redis Cluster slot:

- ``{p:<lowercase name>}``: one player: account, sessions, settings, mail, login failures.
- ``{s:<server id>}``: one game server: record, key hash, settings, online players.
- ``{b:<board>}``: one leaderboard: meta, ranking, records.
- ``{msg}``: all server inboxes, channel memberships and the server directory, so a broadcast
  or channel send is one atomic script; and the revocations stream the relay reads with them.
- ``{status}``: the live-server index and the heartbeat payloads.
- ``{boards}``: the index of board ids (a superset: written before a board's own keys).
- ``{seasons}``: when each board with ``reset`` next needs its past seasons archived.
- ``{ip:<address>}``: one address's login and registration limits.
- ``{bans}``: every ban, its lookup index (player and network -> active bans), the lists, the
  pushes not yet confirmed delivered, and the ``ban.created``/``ban.lifted`` events' outbox.
- ``{clan:<lowercase tag>}``: one clan: record, members, invitations.
- ``{audit}``: the audit log.
- ``{data}``: the data version (``shared.migrations``), alone in its group.

- ``{hooks}``: the webhooks, their recent deliveries and the delivery counts.
- ``{mod}``: the known builds of the (server)² core (``mod.build.*``, the legacy UDP verify).

Webhook events go into an outbox stream in the group of the change that caused them
(``outbox(tag)``: ``{status}``, ``{b:<board>}``, ...), written in the same script or MULTI.

Operations that span groups (player delete, presence, record submit) are listed in docs/DESIGN.md.
"""

from __future__ import annotations

P = "ssm:"


HOLE = "\0"


def around(key: str) -> list[str]:
    """The text before and after ``HOLE`` in a key built with it as its variable part, for
    scripts that build keys of that kind themselves (e.g. for each board id read from a set):
    ``around(board_rank(HOLE))``."""
    before, after = key.split(HOLE)
    return [before, after]


# --- players: tag {p:<lname>} ---------------------------------------------------------------
def _p(lname: str) -> str:
    return f"{P}{{p:{lname}}}"


def player(lname: str) -> str:
    """hash: id, name (display case), created, pw (KDF string), last_seen, server, clan
    (lowercase tag: the player's clan while that clan's member index also holds them)."""
    return f"{_p(lname)}:acct"


def player_settings(lname: str) -> str:
    """hash: setting key -> JSON text."""
    return f"{_p(lname)}:settings"


def player_session(lname: str, token_hash: str) -> str:
    """string with TTL SESSION_TTL: JSON ``{id, name, created, used}`` of the account the token
    logs in (the id must still match the account's, so a deleted and re-registered name is not
    the same player; ``created``/``used`` unix seconds, absent in sessions made before they
    existed); exists while the token is valid."""
    return f"{_p(lname)}:sess:{token_hash}"


def player_sessions(lname: str) -> str:
    """zset: token hash -> expiry (unix ms) of each of the player's sessions, at most
    SESSIONS_PER_PLAYER_MAX (for revocation; the lowest score is the oldest session)."""
    return f"{_p(lname)}:sessidx"


def legacy_player_sessions(lname: str) -> str:
    """set (the first releases only): token hashes of the player's sessions; folded into
    ``player_sessions`` and deleted by ``shared.migrations.index_old_sessions``."""
    return f"{_p(lname)}:sessions"


def player_boards(lname: str) -> str:
    """set: board ids on which the player holds a record."""
    return f"{_p(lname)}:boards"


def mailbox(lname: str) -> str:
    """zset: mail id -> sequence number (newest = highest)."""
    return f"{_p(lname)}:mail"


def mailbox_unread(lname: str) -> str:
    """zset: unread mail id -> sequence number."""
    return f"{_p(lname)}:unread"


def mail(lname: str, mail_id: str) -> str:
    """hash: id, from, subject, body, at, read."""
    return f"{_p(lname)}:mail:{mail_id}"


def mail_seq(lname: str) -> str:
    """string counter: last mail sequence number of this mailbox."""
    return f"{_p(lname)}:mailseq"


def mail_notified(lname: str) -> str:
    """set: mail ids whose live notice was already sent (worker idempotency)."""
    return f"{_p(lname)}:notified"


def mail_notice_at(lname: str) -> str:
    """string with TTL: unix ms of the last mail notice (live or pending) sent for the player."""
    return f"{_p(lname)}:noticeat"


def login_fails_name(lname: str) -> str:
    """string counter with TTL: confirmed failed logins for this name in the window."""
    return f"{_p(lname)}:fails"


def login_busy_name(lname: str) -> str:
    """string counter with TTL: logins for this name whose password is being checked now."""
    return f"{_p(lname)}:busy"


def login_lock_name(lname: str) -> str:
    """string with TTL: present while the name is locked."""
    return f"{_p(lname)}:lock"


def player_bans(lname: str) -> str:
    """hash: ban id -> ban JSON of the active bans naming this player (a copy of what
    ``{bans}`` holds, kept next to the account so presence.join checks it in its own script).
    Kept when the player is deleted: a ban follows the name."""
    return f"{_p(lname)}:bans"


def login_fails_name_via(lname: str, server_id: str) -> str:
    """string counter with TTL: failed logins for this name made through one server."""
    return f"{_p(lname)}:fails:{server_id}"


def login_busy_name_via(lname: str, server_id: str) -> str:
    """string counter with TTL: logins for this name through one server being checked now."""
    return f"{_p(lname)}:busy:{server_id}"


def login_lock_name_via(lname: str, server_id: str) -> str:
    """string with TTL: present while the name is locked for logins through one server."""
    return f"{_p(lname)}:lock:{server_id}"


def mail_sent(lname: str, span: str, window: int) -> str:
    """string counter with TTL: mails sent by this player (``m``: per clock minute, ``d``: per
    UTC day) in one window (its number), for the send budget (README "Abuse budgets")."""
    return f"{_p(lname)}:sent:{span}:{window}"


def mail_blocked(lname: str) -> str:
    """hash: lowercase name -> name as given, of the senders this player blocked
    (``mail.block``)."""
    return f"{_p(lname)}:blocked"


def login_fails_server(server_id: str) -> str:
    """string counter with TTL: failed logins made with one server's key (any name), in the
    minute (LOGIN_FAILS_PER_SERVER_MINUTE); tag {s:<id>}."""
    return f"{_s(server_id)}:loginfails"


def login_busy_server(server_id: str) -> str:
    """string counter with TTL: logins made with one server's key being checked now."""
    return f"{_s(server_id)}:loginbusy"


def login_lock_server(server_id: str) -> str:
    """string with TTL: present while logins made with one server's key are refused."""
    return f"{_s(server_id)}:loginlock"


# --- servers: tag {s:<id>} ------------------------------------------------------------------
def _s(server_id: str) -> str:
    return f"{P}{{s:{server_id}}}"


def server(server_id: str) -> str:
    """hash: id, name, key (sha256 of the key), created."""
    return f"{_s(server_id)}:srv"


def server_settings(server_id: str) -> str:
    """hash: setting key -> JSON text."""
    return f"{_s(server_id)}:settings"


def server_players(server_id: str) -> str:
    """set: lowercase names of registered players online on this server."""
    return f"{_s(server_id)}:players"


def server_polls(server_id: str) -> str:
    """zset: the server's open long-polls (``message.read`` with ``wait``): a token per poll
    -> unix ms after which it counts as gone (its wait plus a grace, for a crashed process)."""
    return f"{_s(server_id)}:polls"


def server_budget(server_id: str, budget: str, window: int) -> str:
    """string counter with TTL: the server's spending of one budget (``reg``: registrations
    per hour) in one clock window (its number)."""
    return f"{_s(server_id)}:budget:{budget}:{window}"


# --- messaging: tag {msg} -------------------------------------------------------------------
def servers_all() -> str:
    """set: ids of every registered server (broadcast targets)."""
    return f"{P}{{msg}}:servers"


def inbox(server_id: str) -> str:
    """stream: everything addressed to one server (messages, mail notices, server_offline).

    Fields: ``e`` (event: message|mail|server_offline) and ``d`` (JSON payload)."""
    return f"{P}{{msg}}:inbox:{server_id}"


def message_ids() -> str:
    """stream (capped): one entry per send; its ids are the ids every inbox copy carries."""
    return f"{P}{{msg}}:idlog"


def inbox_prefix() -> str:
    """Prefix of every inbox key (the relay strips it to get the server id)."""
    return f"{P}{{msg}}:inbox:"


def revocations() -> str:
    """stream (capped): one entry per ended server key or player session (``k``: server|player,
    ``w``: server id or lowercase name, ``r``: why). In ``{msg}`` so the relay's one
    ``XREAD`` of the inboxes reads it too, on the same node (relay/fanout.py)."""
    return f"{P}{{msg}}:revoked"


def channel(name: str) -> str:
    """set: server ids that joined the channel."""
    return f"{P}{{msg}}:chan:{name}"


def server_channels(server_id: str) -> str:
    """set: channel names the server joined."""
    return f"{P}{{msg}}:chans:{server_id}"


def send_budget(server_id: str) -> str:
    """hash with TTL: a server's message.send budget: t (units x 60,000), ts (unix ms).

    In ``{msg}`` so that the delivery script pays and writes in one group."""
    return f"{P}{{msg}}:budget:{server_id}"


def delivered(tag: str) -> str:
    """string with TTL: present once the backend's delivery ``tag`` (e.g. ``ban:<id>``) was
    appended to the inboxes, so a retried delivery appends nothing twice."""
    return f"{P}{{msg}}:sent:{tag}"


def inbox_trim_lock() -> str:
    """string with TTL: held by the worker that queued the periodic inbox trim."""
    return f"{P}{{msg}}:trimlock"


def notice_sent(marker: str) -> str:
    """string with TTL: present once the notice ``marker`` names (``mail:<lname>:<mail id>``,
    ``pending:<lname>:<server id>:<join ms>``) was appended to an inbox: written by the same
    script as the inbox entry, so a retried notice job never appends it twice."""
    return f"{P}{{msg}}:sent:{marker}"


# --- mail outbox: tag {outbox} --------------------------------------------------------------
def mail_outbox() -> str:
    """zset: ``<mail id>:<lname>`` -> unix ms, one per stored mail whose live notice is not
    yet handled. Added before the mail is stored (a superset), removed by the notice job
    when it is done; the worker re-queues the notice of an entry left over (a web process
    that died between storing a mail and queueing its notice)."""
    return f"{P}{{outbox}}:mail"


def outbox_sweep_lock() -> str:
    """string with TTL, on the queue Redis: held by the worker that queued the outbox sweep."""
    return f"{P}{{outbox}}:sweeplock"


# --- status: tag {status} -------------------------------------------------------------------
def status_live() -> str:
    """zset: server id -> last heartbeat (unix ms)."""
    return f"{P}{{status}}:live"


def status_data() -> str:
    """hash: server id -> JSON of the last heartbeat payload."""
    return f"{P}{{status}}:data"


def status_sweep_lock() -> str:
    """string with TTL: held by the worker running the expiry sweep."""
    return f"{P}{{status}}:sweeplock"


def status_version() -> str:
    """counter: the public server list's version, bumped in the script that changes something
    the list shows (a heartbeat that changes a shown field or brings a server back, an expiry,
    a deletion); the web's render cache is keyed by it (shared/web/pages.py)."""
    return f"{P}{{status}}:version"


# --- boards: tag {b:<board>} ----------------------------------------------------------------
def _b(board: str) -> str:
    return f"{P}{{b:{board}}}"


def board(board_id: str) -> str:
    """hash: id, order (asc|desc), operator (best|set|incr|decr), created."""
    return f"{_b(board_id)}:meta"


def board_rank(board_id: str, period: str = "") -> str:
    """zset: member '<at ms, 13 digits>:<lname>' -> score (negated when order is desc).

    Equal scores sort by member, so the earlier record ranks first in either order. A board
    with ``reset`` has one per season, named by the season's calendar ``period``
    (``shared.storage.seasons.period_id``: ``d<day>``, ``w<week>``, ``m<month>``)."""
    return f"{_b(board_id)}:rank:{period}" if period else f"{_b(board_id)}:rank"


def board_records(board_id: str, period: str = "") -> str:
    """hash: lname -> JSON {player, score, meta, server, at, member}; one per season, like
    ``board_rank``."""
    return f"{_b(board_id)}:rec:{period}" if period else f"{_b(board_id)}:rec"


def board_seasons(board_id: str) -> str:
    """hash: the archive of a board with ``reset``: season number -> JSON list of its top 3
    records (as stored in ``board_records``), written once by the worker when the season has
    ended; ``from`` -> the oldest season still kept."""
    return f"{_b(board_id)}:seasons"


def boards_index() -> str:
    """set: every board id, added before the board's meta is written (a superset: an id whose
    meta hash is missing is no board)."""
    return f"{P}{{boards}}:index"


# --- seasons: tag {seasons} ------------------------------------------------------------------
def seasons_due() -> str:
    """zset: board id -> when its current season ends (unix ms, plus a grace period): the
    worker archives the boards due. An index written as a superset, before the board."""
    return f"{P}{{seasons}}:due"


def seasons_job_lock() -> str:
    """string with TTL: held by the worker that queued the season archive job this period."""
    return f"{P}{{seasons}}:joblock"


# --- bans: tag {bans} -----------------------------------------------------------------------
def ban(ban_id: str) -> str:
    """hash: the ban's fields (id, player, ip, reason, scope, by, at, expires_at as JSON text
    in ``json``), its sequence number ``seq``, and once lifted ``lifted_at``, ``lifted_by``,
    ``lift_reason``."""
    return f"{P}{{bans}}:ban:{ban_id}"


def ban_index() -> str:
    """hash: ``p:<lname>`` or ``n<4|6>:<network in hex>/<prefix length>`` -> JSON list of the
    active (not lifted) bans on that player or network; expired ones are pruned by the
    worker."""
    return f"{P}{{bans}}:idx"


def ban_seq() -> str:
    """string counter: the last ban sequence number (list order and cursors)."""
    return f"{P}{{bans}}:seq"


def bans_all() -> str:
    """zset: ban id -> sequence number, every ban ever made (the history)."""
    return f"{P}{{bans}}:all"


def bans_of_player(lname: str) -> str:
    """zset: ban id -> sequence number, the bans naming one player."""
    return f"{P}{{bans}}:player:{lname}"


def bans_expiring() -> str:
    """zset: ban id -> expiry (unix seconds) of the active bans with a duration."""
    return f"{P}{{bans}}:expiring"


def bans_of_scope(scope: str) -> str:
    """zset: ban id -> sequence number, the bans of one scope (``global`` or a server id):
    ``ban.list``'s index for a server (README "Abuse budgets": a page per call, never a scan)."""
    return f"{P}{{bans}}:scope:{scope}"


def bans_active(scope: str = "") -> str:
    """zset: ban id -> sequence number, the bans not lifted, of one scope (or of every scope
    when ``scope`` is empty): ``ban.list``'s ``active=1`` index. A superset: expired bans leave
    it when the worker prunes them, and ``ban.list`` filters what is left."""
    return f"{P}{{bans}}:active:{scope}" if scope else f"{P}{{bans}}:active"


def moderation_budget(server_id: str, minute: int) -> str:
    """string counter with TTL: a server key's moderation writes (ban.create, ban.lift) in one
    clock minute; in ``{bans}`` so that the lift's script counts it in its own step."""
    return f"{P}{{bans}}:budget:{server_id}:{minute}"


def bans_lists_ready() -> str:
    """string: present once every ban is in the scope and active indexes (a new store sets
    it at its first ban; the worker's ban job fills the indexes of bans older than them and
    then sets it; until then ``ban.list`` pages through the history list)."""
    return f"{P}{{bans}}:listsready"


def bans_reindex_cursor() -> str:
    """string: the sequence number up to which the worker filled the ``ban.list`` indexes."""
    return f"{P}{{bans}}:reindexed"


def ban_outbox() -> str:
    """zset: ``ban:<id>`` or ``unban:<id>`` -> unix ms it was stored: pushes whose later steps
    (player copy, inbox delivery) are not confirmed done yet; the worker redoes old ones. (Not
    the group's webhook events: those are in ``outbox("bans")``, a stream.)"""
    return f"{P}{{bans}}:pending"


def ban_job_lock() -> str:
    """string with TTL: held by the worker that queued the ban outbox job this period."""
    return f"{P}{{bans}}:joblock"


# --- clans: tag {clan:<ltag>} -----------------------------------------------------------------
def _c(ltag: str) -> str:
    return f"{P}{{clan:{ltag}}}"


def clan(ltag: str) -> str:
    """hash: tag (display case), name, owner (display name), created."""
    return f"{_c(ltag)}:clan"


def clan_members(ltag: str) -> str:
    """zset: lname -> joined (unix ms). An index written as a superset: a player is a member
    only while their account's ``clan`` field also names this clan."""
    return f"{_c(ltag)}:members"


def clan_invites(ltag: str) -> str:
    """zset: lname -> invited (unix ms)."""
    return f"{_c(ltag)}:invites"


def clan_invite_ids(ltag: str) -> str:
    """hash: lname -> the account id invited, so an invitation is for that account only (a
    new account of the same name cannot accept it). Written with ``clan_invites``."""
    return f"{_c(ltag)}:inviteids"


# --- audit: tag {audit} -----------------------------------------------------------------------
def audit_log() -> str:
    """stream: one entry per admin or moderation action: op, by, target, reason, at; trimmed
    by MINID on append to the last ``shared.storage.audit.KEEP_DAYS`` days."""
    return f"{P}{{audit}}:log"


# --- webhook events: an outbox per group, in that group ------------------------------------
def outbox(tag: str) -> str:
    """stream (capped): webhook events emitted by changes in the group ``{<tag>}`` (``status``,
    ``b:<board>``, ...); fields ``e`` (event name) and ``d`` (JSON data). In the cause's own
    group, so the event is written in the cause's own script or MULTI."""
    return f"{P}{{{tag}}}:outbox"


def board_outbox(board_id: str) -> str:
    """stream: the outbox of one board's group (``record.top``, ``season.ended``)."""
    return outbox(f"b:{board_id}")


def outbox_cursor(tag: str) -> str:
    """string: id of the last outbox entry fanned out to webhook delivery jobs."""
    return f"{P}{{{tag}}}:outbox:cursor"


# --- webhooks: tag {hooks} ------------------------------------------------------------------
def webhook(webhook_id: str) -> str:
    """hash: id, url, events (comma-separated), format (json|discord), secret, created (unix
    ms), dropped (events given up on), down_until (unix ms: attempts wait until then after a
    failure)."""
    return f"{P}{{hooks}}:wh:{webhook_id}"


def webhook_ids() -> str:
    """set: the id of every webhook."""
    return f"{P}{{hooks}}:ids"


def webhook_deliveries(webhook_id: str) -> str:
    """list: the last 50 delivery attempts of one webhook, newest first (JSON each)."""
    return f"{P}{{hooks}}:wh:{webhook_id}:log"


def webhook_inflight(webhook_id: str) -> str:
    """zset with TTL: delivery job id -> start (unix ms) of each attempt waiting for an answer."""
    return f"{P}{{hooks}}:wh:{webhook_id}:inflight"


def webhook_counts() -> str:
    """hash: delivered, failed, dropped: attempts of every webhook by outcome (all time)."""
    return f"{P}{{hooks}}:counts"


# --- rate limits per address: tag {ip:<address>} -------------------------------------------
def _ip(ip: str) -> str:
    return f"{P}{{ip:{ip}}}"


def login_fails_ip(ip: str) -> str:
    """string counter with TTL: confirmed failed logins from one address in the window."""
    return f"{_ip(ip)}:fails"


def login_busy_ip(ip: str) -> str:
    """string counter with TTL: logins from one address whose password is being checked now."""
    return f"{_ip(ip)}:busy"


def login_lock_ip(ip: str) -> str:
    """string with TTL: present while the address is locked."""
    return f"{_ip(ip)}:lock"


def register_count(ip: str, hour: int) -> str:
    """string counter with TTL: registrations from one address in one clock hour."""
    return f"{_ip(ip)}:reg:{hour}"


# --- idempotency ------------------------------------------------------------------------------
def idempotency(caller: str, operation: str, key: str) -> str:
    """string with TTL: ``pending:<fingerprint>`` while the first request with this
    Idempotency-Key runs, then JSON ``{status, body, fp}`` of its answer (secrets removed)."""
    return f"{P}idem:{caller}:{operation}:{key}"


def wait_mark(tag: str) -> str:
    """string, expires: a write that SSM_WAIT_REPLICAS sends to one primary before ``WAIT``
    (``shared.redis_conn.wait_replicas``); ``tag`` picks a slot that primary serves."""
    return f"{P}{{w:{tag}}}:wait"


# --- known builds of the (server)² core: tag {mod} -------------------------------------------
def mod_builds() -> str:
    """hash: SHA-1 (40 lowercase hex) of a core file -> JSON ``{version, at (unix ms), seq}``;
    ``seq`` orders the sets (the newest build is the one set last)."""
    return f"{P}{{mod}}:builds"


def mod_build_seq() -> str:
    """string counter: the ``seq`` of the last ``mod.build.set``."""
    return f"{P}{{mod}}:builds:seq"


# --- the data version: tag {data} --------------------------------------------------------------
def data_version() -> str:
    """string: the number of the last migration (``shared.migrations``) the data has been
    brought through; absent on a store written before versions were kept (version 0) and on an
    empty store until the first process stamps it."""
    return f"{P}{{data}}:version"
