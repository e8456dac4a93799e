"""The `header.stamp` rule shared by the JointTrajectory checkers (node_peer.py, bag_checks.py).

A stamp is 0 ("start when received") or a time on the receiver's clock: JointTrajectoryController
rejects a stamped trajectory that ends before it arrives (jazzy `validate_trajectory_msg`), and
the node stamps a message with the tick that computed it, so the stamp lies near the receipt.
"""


def secs(t):
    return t.sec + t.nanosec * 1e-9


def stamp_problems(msg, receipt_s, tolerance_s):
    """Problems of `msg`'s stamp, received at `receipt_s` (seconds, the receiver's clock)."""
    stamp = secs(msg.header.stamp)
    if stamp == 0.0 or not msg.points:
        return []
    out = []
    if stamp + secs(msg.points[-1].time_from_start) < receipt_s:
        out.append(f'stamped {receipt_s - stamp:.3f} s before receipt, ends in the past')
    if abs(receipt_s - stamp) > tolerance_s:
        out.append(f'stamp {stamp:.3f} s is {receipt_s - stamp:+.3f} s off the clock at receipt')
    return out
