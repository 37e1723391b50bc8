"""Counting what a traced program computes, for tests that check a gate is a real branch."""

import jax


def jaxpr_stats(fn, *args) -> dict:
    """Matrix products outside and inside `lax.cond` branches, the number of conds, and the
    shapes `select_n` produces, over `fn`'s jaxpr and every sub-jaxpr."""
    out = {"dots": 0, "dots_in_cond": 0, "conds": 0, "select_shapes": set()}

    def walk(jaxpr, in_cond):
        for eqn in jaxpr.eqns:
            name = eqn.primitive.name
            if name == "dot_general":
                out["dots_in_cond" if in_cond else "dots"] += 1
            out["conds"] += name == "cond"
            if name == "select_n":
                out["select_shapes"].add(tuple(eqn.outvars[0].aval.shape))
            for value in eqn.params.values():
                for sub in value if isinstance(value, (tuple, list)) else (value,):
                    sub = getattr(sub, "jaxpr", sub)
                    if hasattr(sub, "eqns"):
                        walk(sub, in_cond or name == "cond")

    walk(jax.make_jaxpr(fn)(*args).jaxpr, False)
    return out
