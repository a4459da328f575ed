"""Exceptions raised by alkahest.

Every error a user can cause has its own class, derived from :class:`AlkahestError` and
from the built-in exception it resembles, so ``except ValueError`` keeps working.
"""


class AlkahestError(Exception):
    """Base class of every alkahest exception."""


class ArgumentError(AlkahestError, ValueError):
    """An argument has a value the function does not take (a thread count of 0, an
    unknown mode, a negative order, ...); the message says what it takes."""


class ArgumentTypeError(AlkahestError, TypeError):
    """An argument has a type the function does not take (a string where expressions or
    numbers are expected, an expression used as a truth value, ...); the message says
    what it takes."""


class PoolMismatchError(AlkahestError, ValueError):
    """Expressions from two different ``ExprPool`` objects were combined."""


class InvalidVarsError(AlkahestError, ValueError):
    """``vars`` holds something that is not a symbol, or a symbol twice."""


class UnboundSymbolError(AlkahestError, ValueError):
    """The expression uses a symbol that ``vars`` does not list."""


class ArityError(AlkahestError, TypeError):
    """A compiled function got the wrong number of arguments, arrays or outputs."""


class ShapeError(AlkahestError, ValueError):
    """Array shapes do not broadcast together, or ``out`` has the wrong shape or layout."""


class DTypeError(AlkahestError, TypeError):
    """An array cannot be converted to float64 (strings, objects, complex), or ``out`` is
    not float64."""


class ExpressionError(AlkahestError, ValueError):
    """An expression cannot be built: unknown function, inexact integer constant, ..."""


class ParseError(ExpressionError):
    """Expression text does not parse. The message names what was expected and shows
    the input with a caret under the place."""


class ConversionError(ExpressionError):
    """An expression from another library (SymPy, symengine) uses something alkahest
    cannot compute: an undefined function, the imaginary unit, an unevaluated integral,
    ... The message names the class and shows the sub-expression."""


class EvaluateError(AlkahestError, ValueError):
    """``alkahest.evaluate`` cannot give numexpr's result for this expression: numexpr
    would compute it in integers, float32 or complex numbers, or it uses a numexpr
    function alkahest does not have. The message says which part, and what to do."""


class SerializationError(AlkahestError, ValueError):
    """Bytes given to ``ExprPool.loads``, ``Tape.loads`` or ``pickle.loads`` are not a
    valid alkahest payload: truncated, damaged, of another kind, or written by a newer
    alkahest (the message says which, and what to do)."""


class CompileError(AlkahestError, RuntimeError):
    """A native tier could not compile the expression. ``compile_expr`` catches it and
    falls back to the next tier, recording why in ``f.fallback_reason``."""


class ConfigError(AlkahestError, ValueError, TypeError):
    """A ``CompileConfig`` option has the wrong type or value (a flag given as the string
    ``"false"``, a negative count, ...); the message names the option and what it takes."""


class UnknownTierError(AlkahestError, ValueError):
    """``CompileConfig(tier=...)`` names no tier alkahest knows."""


class TierUnavailableError(AlkahestError, RuntimeError):
    """The requested tier exists but cannot be used in this build or on this machine."""


class CalibrationError(AlkahestError, ValueError):
    """A cost-model calibration file cannot be used (unreadable, wrong format, missing
    entries); re-run ``python -m alkahest.calibrate`` or unset ``ALKAHEST_CALIBRATION``."""


class CudaError(AlkahestError, RuntimeError):
    """The GPU tier cannot run: the base of the CUDA errors below."""


class CudaToolkitError(CudaError):
    """A CUDA tool alkahest needs (ptxas, libdevice) or cuda-python is not installed."""


class CudaDriverError(CudaError):
    """No NVIDIA driver could be loaded, or the driver reported an error."""


class CudaDeviceError(CudaError):
    """The driver works but there is no usable CUDA device (or not the one asked for)."""


class PTXVersionError(CudaError):
    """The driver cannot load the PTX: it is newer than the driver supports."""


__all__ = [name for name in dir() if name.endswith("Error")]
