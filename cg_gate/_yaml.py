"""The YAML parser suites and policies are composed with (node tree kept for line numbers)."""

from __future__ import annotations

import yaml

# libyaml's parser where PyYAML was built with it: the same nodes and marks, about 4x faster
SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
