"""The pull-request comment: one per job, created once and updated on every push.

The comment to update is found by its hidden marker **and** its author: only a comment
written by the token's own identity is ever edited. That identity is `GET /user` for a
personal access token; the Actions `GITHUB_TOKEN` cannot read `/user`, and its comments are
written by `github-actions[bot]` (type `Bot`), so that is the identity then; `bot_login`
names it explicitly (e.g. a GitHub App's `my-app[bot]`). A comment carrying the marker
from anyone else is never edited: it is left alone, a new comment is created, and the
outcome lists it so the job log and summary can say so.

Talks to the GitHub REST API with `urllib` only, and only to the API URL it is given
(`$GITHUB_API_URL`): redirects are refused and pagination links pointing elsewhere are
not followed, so the token never leaves that host. A read-only token (pull requests from
forks) answers 403 or 404; that is not an error here but a note for the job summary.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, Literal

from cg_gate import __version__
from cg_gate.errors import GateError

#: Hidden first line of every cg-gate comment.
MARKER = "<!-- cg-gate:report -->"
#: GitHub refuses comment bodies longer than this many characters.
COMMENT_LIMIT = 65536
#: Pages of 100 comments read at most while looking for ours.
MAX_PAGES = 50

_REPO_RE = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_KEY_RE = re.compile(r"[^A-Za-z0-9_.:/=@+ -]")
_LINK_NEXT_RE = re.compile(r'<([^>]+)>\s*;\s*rel="next"')
_SKIP_STATUSES = (401, 403, 404)
#: Who writes comments made with the Actions `GITHUB_TOKEN`.
ACTIONS_BOT_LOGIN = "github-actions[bot]"
_LOGIN_UNSAFE_RE = re.compile(r"[^A-Za-z0-9_.\[\]-]")
_TRUNCATED = (
    "\n\n> **Note:** the comment was truncated; the full report is in the job's artifact.\n"
)


class CommentError(GateError):
    """The GitHub API answered with an error other than a missing permission."""


@dataclass(frozen=True)
class ForeignComment:
    """A comment that carries cg-gate's marker but was not written by the token's identity."""

    comment_id: int | None
    author: str

    def describe(self) -> str:
        """'comment 123 by someone' with the login reduced to GitHub's login alphabet."""
        author = _LOGIN_UNSAFE_RE.sub("_", self.author)[:60] or "an unknown author"
        return f"comment {self.comment_id} by {author}"


@dataclass(frozen=True)
class CommentResult:
    """What happened to the pull-request comment.

    `ignored` lists comments that carried this job's marker but were written by someone
    else; they were not edited (a new comment was created instead of taking them over).
    """

    action: Literal["created", "updated", "skipped"]
    comment_id: int | None = None
    url: str | None = None
    note: str | None = None
    ignored: tuple[ForeignComment, ...] = ()

    def ignored_note(self) -> str | None:
        """One sentence for the log and the job summary naming the ignored comments."""
        if not self.ignored:
            return None
        listed = ", ".join(c.describe() for c in self.ignored[:10])
        more = f" and {len(self.ignored) - 10} more" if len(self.ignored) > 10 else ""
        return (f"Ignored {len(self.ignored)} comment(s) carrying the cg-gate marker that the "
                f"gate's token did not write ({listed}{more}); they are not this gate's report "
                "and were left unchanged.")


def comment_marker(key: str | None = None) -> str:
    """The hidden marker block that identifies this job's comment.

    `key` keeps matrix legs apart (job name plus leg); it is reduced to a safe alphabet
    so it can never close the HTML comment.
    """
    if not key:
        return MARKER
    safe = _KEY_RE.sub("_", key).strip()[:200]
    return f"{MARKER}\n<!-- cg-gate:job={safe} -->"


def comment_body(markdown: str, key: str | None = None) -> str:
    """The full comment: marker block, then the report summary, within GitHub's limit."""
    head = comment_marker(key) + "\n"
    body = head + markdown
    if len(body) <= COMMENT_LIMIT:
        return body
    room = COMMENT_LIMIT - len(head) - len(_TRUNCATED)
    cut = markdown[:room]
    newline = cut.rfind("\n")
    return head + (cut[: newline + 1] if newline > 0 else cut) + _TRUNCATED


@dataclass(frozen=True)
class Identity:
    """Who the token writes comments as: a login, and for the Actions bot its type too."""

    login: str
    type: str | None = None

    def wrote(self, comment: dict[str, Any]) -> bool:
        """Whether `comment` was written by this identity (GitHub logins are case-blind)."""
        user = comment.get("user")
        if not isinstance(user, dict) or not isinstance(user.get("login"), str):
            return False
        if user["login"].lower() != self.login.lower():
            return False
        return self.type is None or user.get("type") == self.type


def _has_marker(comment: dict[str, Any], marker: str) -> bool:
    body = comment.get("body") or ""
    return isinstance(body, str) and (body.startswith(marker + "\n") or body == marker)


def _author(comment: dict[str, Any]) -> str:
    user = comment.get("user")
    login = user.get("login") if isinstance(user, dict) else None
    return login if isinstance(login, str) else ""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D401
        return None  # a redirect becomes an HTTPError; the token stays on the API host


class GitHubClient:
    """A minimal REST client bound to one API base URL and one token."""

    def __init__(self, api_url: str, token: str, timeout: float = 30.0) -> None:
        parsed = urllib.parse.urlsplit(api_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise GateError(f"GitHub API URL {api_url!r} is not an http(s) URL",
                            fix="set GITHUB_API_URL (or --api-url) to e.g. https://api.github.com")
        self.api_url = api_url.rstrip("/")
        self._token = token
        self._timeout = timeout
        self._opener = urllib.request.build_opener(_NoRedirect())

    def _on_api_host(self, url: str) -> bool:
        return url == self.api_url or url.startswith(self.api_url + "/")

    def request(self, method: str, url: str, payload: dict[str, Any] | None = None
                ) -> tuple[Any, str | None]:
        """Send one request; return the decoded JSON body and the `Link` header."""
        if not self._on_api_host(url):
            raise CommentError(f"refusing to send the token to {url!r}: not under {self.api_url}")
        data = None if payload is None else json.dumps(payload).encode("utf-8")
        req = urllib.request.Request(url, data=data, method=method)  # noqa: S310 (http/https only)
        req.add_header("Accept", "application/vnd.github+json")
        req.add_header("X-GitHub-Api-Version", "2022-11-28")
        req.add_header("User-Agent", f"cg-gate/{__version__}")
        if self._token:
            req.add_header("Authorization", f"Bearer {self._token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        # The scheme was checked in __init__ and every URL is under api_url (http/https).
        with self._opener.open(req, timeout=self._timeout) as resp:  # noqa: S310
            raw = resp.read()
            link = resp.headers.get("Link")
        return (json.loads(raw) if raw else None), link


def _next_link(link: str | None) -> str | None:
    if not link:
        return None
    match = _LINK_NEXT_RE.search(link)
    return match.group(1) if match else None


def token_identity(client: GitHubClient, bot_login: str | None = None) -> Identity:
    """The identity the token writes comments as.

    `bot_login` when given; else the login `GET /user` answers (personal access tokens);
    else, when `/user` is refused (the Actions `GITHUB_TOKEN`, 401/403/404), the Actions
    bot: login `github-actions[bot]` of type `Bot`.
    """
    if bot_login:
        return Identity(bot_login.strip())
    try:
        user, _ = client.request("GET", f"{client.api_url}/user")
    except urllib.error.HTTPError as exc:
        if exc.code in _SKIP_STATUSES:
            return Identity(ACTIONS_BOT_LOGIN, "Bot")
        raise
    login = user.get("login") if isinstance(user, dict) else None
    if not isinstance(login, str) or not login:
        return Identity(ACTIONS_BOT_LOGIN, "Bot")
    return Identity(login)


def _find_comment(client: GitHubClient, repo: str, pr_number: int, marker: str,
                  identity: Identity) -> tuple[dict[str, Any] | None, list[ForeignComment]]:
    """This job's comment by `identity`, and the marker comments by others seen before it."""
    url: str | None = f"{client.api_url}/repos/{repo}/issues/{pr_number}/comments?per_page=100"
    pages = 0
    foreign: list[ForeignComment] = []
    while url and pages < MAX_PAGES:
        comments, link = client.request("GET", url)
        pages += 1
        for comment in comments or []:
            if not isinstance(comment, dict) or not _has_marker(comment, marker):
                continue
            if identity.wrote(comment) and isinstance(comment.get("id"), int):
                return comment, foreign
            cid = comment.get("id")
            foreign.append(ForeignComment(cid if isinstance(cid, int) else None,
                                          _author(comment)))
        url = _next_link(link)
        if url and not client._on_api_host(url):
            break
    return None, foreign


def _skip_note(status: int, repo: str, pr_number: int) -> str:
    return (
        f"The pull-request comment on {repo}#{pr_number} was skipped: the token may not write "
        f"comments (HTTP {status}). This is expected on pull requests from forks, whose token "
        "is read-only; post the comment from a `workflow_run` workflow instead "
        "(see examples/model-repo in cg-gate)."
    )


def upsert_pr_comment(
    body: str,
    *,
    repo: str,
    pr_number: int,
    token: str,
    api_url: str = "https://api.github.com",
    key: str | None = None,
    expected_head_sha: str | None = None,
    timeout: float = 30.0,
    bot_login: str | None = None,
) -> CommentResult:
    """Create this job's comment on a pull request, or update it if it already exists.

    The comment is found by its hidden marker (`comment_marker(key)`) and its author (the
    token's identity, see `token_identity`; `bot_login` names it) among all comments of
    the pull request (paginated). Marker comments by anyone else are never edited: they
    are listed in the result's `ignored` and a comment of our own is created. With
    `expected_head_sha`, the pull request's head must be that commit, or nothing is posted
    (a guard for `workflow_run` workflows that read the PR number from an artifact). A 401/403/404 answer is returned as `skipped`
    with a note for the job summary; other failures raise `CommentError`.
    """
    if not _REPO_RE.match(repo):
        raise GateError(f"repository {repo!r} is not owner/name",
                        fix="pass GITHUB_REPOSITORY (or --repo) as owner/name")
    if pr_number < 1:
        raise GateError(f"pull request number {pr_number} is not positive",
                        fix="pass the pull request's number")
    if not token:
        return CommentResult("skipped", note="The pull-request comment was skipped: no token "
                                             "was given (set the `github-token` input).")
    client = GitHubClient(api_url, token, timeout)
    base = f"{client.api_url}/repos/{repo}"
    marker = comment_marker(key)
    text = comment_body(body, key)
    ignored: list[ForeignComment] = []
    try:
        if expected_head_sha:
            pull, _ = client.request("GET", f"{base}/pulls/{pr_number}")
            head = ((pull or {}).get("head") or {}).get("sha")
            if head != expected_head_sha:
                return CommentResult("skipped", note=(
                    f"The pull-request comment was skipped: {repo}#{pr_number} is at "
                    f"{str(head)[:12]}, not at the commit the gate ran on "
                    f"({expected_head_sha[:12]})."))
        identity = token_identity(client, bot_login)
        existing, ignored = _find_comment(client, repo, pr_number, marker, identity)
        if existing is not None:
            comment, _ = client.request("PATCH", f"{base}/issues/comments/{existing['id']}",
                                        {"body": text})
            action: Literal["created", "updated"] = "updated"
        else:
            comment, _ = client.request("POST", f"{base}/issues/{pr_number}/comments",
                                        {"body": text})
            action = "created"
    except urllib.error.HTTPError as exc:
        if exc.code in _SKIP_STATUSES:
            return CommentResult("skipped", note=_skip_note(exc.code, repo, pr_number),
                                 ignored=tuple(ignored))
        raise CommentError(f"GitHub API answered HTTP {exc.code} for the pull-request comment "
                           f"on {repo}#{pr_number}",
                           fix="check the token's `pull-requests: write` permission and "
                               "https://www.githubstatus.com") from None
    except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CommentError(f"could not reach the GitHub API at {client.api_url} ({reason})",
                           fix="check GITHUB_API_URL and the runner's network") from None
    comment = comment or {}
    return CommentResult(action, comment_id=comment.get("id"), url=comment.get("html_url"),
                         ignored=tuple(ignored))
