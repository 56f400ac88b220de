"""The stable codes of Dockerfile syntax errors (documented in docs/parse-errors.md).

PB10xx: the text cannot be read as a Dockerfile at all (BuildKit's parser rejects it).
PB12xx: warnings (the Dockerfile is accepted).
PB11xx: an instruction is malformed (BuildKit's instruction parser rejects it); raised by
`parse(..., strict=True)`, the default.
"""

NO_INSTRUCTIONS = "PB1001"
BAD_ESCAPE = "PB1002"
DUPLICATE_DIRECTIVE = "PB1003"
JSON_NOT_STRINGS = "PB1004"
NAME_VALUE_MISSING_VALUE = "PB1005"
NAME_VALUE_MISSING_EQUALS = "PB1006"
UNTERMINATED_HEREDOC = "PB1007"
LINE_TOO_LONG = "PB1008"
INTERNAL = "PB1099"

UNKNOWN_INSTRUCTION = "PB1101"
MISSING_ARGUMENTS = "PB1102"
UNKNOWN_FLAG = "PB1103"
FLAG_VALUE = "PB1104"
FROM_ARGUMENTS = "PB1105"
STAGE_NAME = "PB1106"
HEALTHCHECK_TYPE = "PB1107"
ONBUILD_TRIGGER = "PB1108"
SHELL_NOT_JSON = "PB1109"
EMPTY_NAME = "PB1110"
HEREDOC_DESTINATION = "PB1111"

EMPTY_CONTINUATION = "PB1201"
