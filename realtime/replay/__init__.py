"""Replay a saved conversation against other setups and compare the answers.

| module | job |
|---|---|
| ``model`` | the values: turns fed in, replies, runs, a comparison |
| ``plan`` | a History conversation as replay turns, and as the original column |
| ``runner`` | one setup's replay, headless over the SDK's WebSocket |
| ``compare`` | which conversation and setups; the replays side by side, bounded |
| ``expectations`` | per-turn expectations: a replay as a regression test |
| ``report`` | totals, JSON, word diff, the self-contained HTML report |
| ``__main__`` | ``python -m realtime.replay`` |
"""
