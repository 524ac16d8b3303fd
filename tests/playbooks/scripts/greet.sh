#!/bin/sh
echo "hello $1 from $(hostname)"
echo "second argument: $2"
