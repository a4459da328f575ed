"""Front doors for expressions that live elsewhere: SymPy and symengine objects
(:mod:`.sympy`), ``sympy.lambdify``'s calling conventions (:mod:`.lambdify`) and numexpr's
``evaluate`` (:mod:`.evaluate`). Each imports its peer library only when used."""
