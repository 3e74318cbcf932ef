"""Options shared by commands that read policies; kept apart so `policy validate` stays light."""

from __future__ import annotations

import click

ALLOW_EXTERNAL_PATHS = click.option(
    "--allow-external-paths", is_flag=True,
    help="Let the policy read exemplar and reference files outside its own directory tree "
         "(absolute paths, '..', links leading out); only for policies you trust.")
