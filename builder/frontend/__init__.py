"""AST → BuildPlan: stages, ARG/ENV scoping, `$VAR` expansion, --target pruning (pure logic).

Entry point: `plan(dockerfile, options) -> BuildPlan` (see builder.frontend.planner).
Library APIs: `builder.frontend.expand` (BuildKit's shell-word lexer) and
`builder.frontend.dockerignore` (moby/patternmatcher and .dockerignore reading).
"""

from builder.frontend.options import PlanOptions
from builder.frontend.planner import plan

__all__ = ["PlanOptions", "plan"]
