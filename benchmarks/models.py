"""SymPy models for the "from SymPy" benchmarks: a multibody system from sympy.physics and
a generated large expression. Each is (name, args, outputs): plain SymPy symbols and a
flat list of SymPy expressions, the same for every engine."""

from __future__ import annotations

import random
from typing import List, Tuple

import sympy as sp

Model = Tuple[str, List[sp.Symbol], List[sp.Expr]]


def pendulum_on_cart(n: int) -> Model:
    """An n-link pendulum on a cart (Kane's method, sympy.physics.mechanics): the full
    mass matrix and forcing vector, (2n+2)^2 + 2n+2 outputs, with the dynamicsymbols
    replaced by plain symbols (engines other than alkahest take symbols only)."""
    import sympy.physics.mechanics as me

    q = me.dynamicsymbols(f"q:{n + 1}")
    u = me.dynamicsymbols(f"u:{n + 1}")
    force = me.dynamicsymbols("f")
    m = sp.symbols(f"m:{n + 1}")
    length = sp.symbols(f"l:{n}")
    g, t = sp.symbols("g t")
    inertial = me.ReferenceFrame("I")
    origin = me.Point("O")
    origin.set_vel(inertial, 0)
    cart = me.Point("P0")
    cart.set_pos(origin, q[0] * inertial.x)
    cart.set_vel(inertial, u[0] * inertial.x)
    points, particles = [cart], [me.Particle("Pa0", cart, m[0])]
    forces = [(cart, force * inertial.x - m[0] * g * inertial.y)]
    kinematics = [q[0].diff(t) - u[0]]
    for i in range(n):
        frame = inertial.orientnew(f"B{i}", "Axis", [q[i + 1], inertial.z])
        frame.set_ang_vel(inertial, u[i + 1] * inertial.z)
        point = points[-1].locatenew(f"P{i + 1}", length[i] * frame.x)
        point.v2pt_theory(points[-1], inertial, frame)
        points.append(point)
        particles.append(me.Particle(f"Pa{i + 1}", point, m[i + 1]))
        forces.append((point, -m[i + 1] * g * inertial.y))
        kinematics.append(q[i + 1].diff(t) - u[i + 1])
    kane = me.KanesMethod(inertial, q_ind=q, u_ind=u, kd_eqs=kinematics)
    kane.kanes_equations(particles, forces)
    dynamic = list(q) + list(u) + [force]
    plain = sp.symbols(f"q0:{n + 1}") + sp.symbols(f"u0:{n + 1}") + (sp.Symbol("f"),)
    swap = dict(zip(dynamic, plain))
    outputs = [e.xreplace(swap) for e in list(kane.mass_matrix_full) + list(kane.forcing_full)]
    return f"pendulum{n}", list(plain) + list(m) + list(length) + [g], outputs


def generated(n_terms: int, n_inputs: int = 20, seed: int = 0) -> Model:
    """One output: a sum of ``n_terms`` products of trigonometric and polynomial factors
    of ``n_inputs`` inputs (about 8 nodes a term)."""
    rnd = random.Random(seed)
    xs = list(sp.symbols(f"x0:{n_inputs}"))
    fns = [sp.sin, sp.cos, sp.exp, sp.tanh]
    terms = []
    for k in range(n_terms):
        a, b, c = rnd.sample(xs, 3)
        f = rnd.choice(fns)
        coef = sp.Float(rnd.uniform(-1, 1), 15)
        terms.append(sp.Mul._from_args((coef, f(sp.Add._from_args((a, sp.Float(k * 1e-4, 15)))),
                                        sp.Pow(b, rnd.randint(1, 3), evaluate=False), c)))
    return f"generated{n_terms}", xs, [sp.Add._from_args(tuple(terms))]


def tree_nodes(exprs) -> int:
    return sum(sum(1 for _ in sp.preorder_traversal(e)) for e in exprs)
