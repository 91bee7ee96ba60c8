#!/bin/sh
# Greets by name, or reports a catchable error when the input has no "name".
input=$(cat)
name=$(printf '%s' "$input" | sed -n 's/.*"name"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p')
if [ -z "$name" ]; then
  printf 'Direktiv-ErrorCode: greet.input\r\n'
  printf 'Direktiv-ErrorMessage: the input needs a "name", like {"name":"Ada"}\r\n'
  printf 'Content-Type: application/json\r\n\r\n{}'
  exit 0
fi
echo "greeting $name" >&2
printf 'Content-Type: application/json\r\n\r\n{"greeting":"Hello, %s!"}' "$name"
