#!/usr/bin/env bash
# Fails if the deterministic layers (model/, sim/) use the wall clock, OS randomness, std
# distributions, OS threads or sleeps, or if any FIXME is left in the tree. Runs as a ctest.
set -u
top=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$top" || exit 2
status=0
banned='std::chrono::(system|steady|high_resolution)_clock|std::random_device|std::[a-z_]+_distribution|std::thread\b|std::jthread\b|\brand\(|\bsrand\(|\btime\((nullptr|NULL|0)\)|sleep_for|sleep_until|\busleep\(|gettimeofday|clock_gettime'
hits=$(grep -rnE "$banned" model sim --include='*.h' --include='*.cpp' 2>/dev/null)
if [ -n "$hits" ]; then
    echo "banned nondeterministic calls in model/ or sim/ (the simulator must replay bit for bit):"
    echo "$hits"
    status=1
fi
fixme=$(grep -rn 'FIXME' model sim real conformance tools scenarios --include='*.h' --include='*.cpp' --include='*.json' --include='*.sh' 2>/dev/null | grep -v 'lint_banned.sh')
if [ -n "$fixme" ]; then
    echo "FIXME left in the tree (use TODO(#issue)):"
    echo "$fixme"
    status=1
fi
[ $status -eq 0 ] && echo "lint_banned: clean"
exit $status
