"""Plain-Python arithmetic (lists of floats, ``math``) the loss tests check torch against."""

from __future__ import annotations

import math


def softmax(row, tau=1.0):
    m = max(v / tau for v in row)
    ex = [math.exp(v / tau - m) for v in row]
    total = sum(ex)
    return [v / total for v in ex]


def kl(p, q):
    """KL(p || q) of two probability lists."""
    return sum(pi * (math.log(pi) - math.log(qi)) for pi, qi in zip(p, q) if pi > 0)


def ce(row, label):
    return -math.log(softmax(row)[label])


def mean(xs):
    xs = list(xs)
    return sum(xs) / len(xs)


def hard_ce(z, y):
    return mean(ce(row, label) for row, label in zip(z, y))


def soft_kl(z_t, z_s, tau):
    """Batch mean of KL(softmax(z_t / tau) || softmax(z_s / tau)), no tau^2."""
    return mean(kl(softmax(t, tau), softmax(s, tau)) for t, s in zip(z_t, z_s))


def sub(a, b):
    return [x - y for x, y in zip(a, b)]


def dot(a, b):
    return sum(x * y for x, y in zip(a, b))


def norm(a):
    return math.sqrt(dot(a, a))


def smooth_l1(a, b):
    d = abs(a - b)
    return 0.5 * d * d if d < 1 else d - 0.5


def mse(a, b):
    return mean((x - y) ** 2 for x, y in zip(a, b))


def matvec(w, rows, bias=None):
    out = [[sum(wij * xj for wij, xj in zip(wi, row)) for wi in w] for row in rows]
    if bias is not None:
        out = [[v + bi for v, bi in zip(r, bias)] for r in out]
    return out
