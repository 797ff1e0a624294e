"""C text of ``FlatElemwise`` (``dandelion.ops.flat_elemwise``): one flat loop over contiguous buffers.

The loop lives in a function of its own, marked ``hot`` and ``noinline``. Written inline
in the node's ``run()``, after PyTensor's error paths, GCC judged the same loop cold
("Not unswitching cold loops" in ``-fopt-info``) and compiled it for size, unvectorised:
3.8 ms for W4's 1024x1024 Adam update against 1.3 ms as a function of its own.

Positions name the function's parameters (``in0``, ``out1``), one per input and output,
so that an input that appears twice, or an output that overwrites an input, simply
passes the same pointer twice. The scalar code reads every input before it writes an
output, which is what PyTensor's own inplace loops rely on; ``#pragma GCC ivdep`` tells
GCC that the only overlaps are these same-index ones. A scalar op that can fail (an
integer division by a run-time zero) sets the Python error and returns 1, and the node
fails as PyTensor's loop would.
"""

from __future__ import annotations

C_CODE_VERSION = (1,)


def _parameters(full_inputs, input_ctypes, output_ctypes):
    """(parameters, per-element declarations) of the flat function, one per input and output position."""
    parameters, declarations = [], []
    for position, (ctype, full) in enumerate(zip(input_ctypes, full_inputs, strict=True)):
        name = f"in{position}"
        if full:
            parameters.append(f"{ctype}* {name}_ptr")
            declarations.append(f"{ctype}& {name}_i = {name}_ptr[i];")
        else:
            # a broadcast scalar: read once, kept in a register
            parameters.append(f"const {ctype} {name}_value")
            declarations.append(f"{ctype} {name}_i = {name}_value;")
    for position, ctype in enumerate(output_ctypes):
        name = f"out{position}"
        parameters.append(f"{ctype}* {name}_ptr")
        declarations.append(f"{ctype}& {name}_i = {name}_ptr[i];")
    return parameters, declarations


def scalar_names(n_inputs, n_outputs):
    """The per-element names the scalar code is generated with (``in0_i``, ..., ``out0_i``, ...)."""
    return [f"in{i}_i" for i in range(n_inputs)], [f"out{i}_i" for i in range(n_outputs)]


FAIL = "return 1;"


def flat_function(function_name, full_inputs, input_ctypes, output_ctypes, scalar_code):
    """Support code: ``int function_name(n, in0, ..., out0, ...)``, 0 on success."""
    parameters, declarations = _parameters(full_inputs, input_ctypes, output_ctypes)
    declared = "\n            ".join(declarations)
    return f"""
    __attribute__((noinline, hot)) static int {function_name}(const npy_intp n_flat, {", ".join(parameters)})
    {{
        #pragma GCC ivdep
        for (npy_intp i = 0; i < n_flat; ++i) {{
            {declared}
            {{
                {scalar_code}
            }}
        }}
        return 0;
    }}
    """


def flat_call(function_name, full_inputs, input_names, input_ctypes, output_names, output_ctypes, strided_loop, fail):
    """Node code: the flat function when every full-size buffer is C-contiguous, else PyTensor's strided loop.

    Outputs are already allocated (or aliased to the inputs they overwrite) by the code
    that precedes this, so their buffers are read here like the inputs'.
    """
    arguments = []
    for name, ctype, full in zip(input_names, input_ctypes, full_inputs, strict=True):
        data = f"(({ctype}*)PyArray_DATA({name}))"
        arguments.append(data if full else f"{data}[0]")
    arguments += [f"(({ctype}*)PyArray_DATA({name}))" for name, ctype in zip(output_names, output_ctypes, strict=True)]
    buffers = [name for name, full in zip(input_names, full_inputs, strict=True) if full] + list(output_names)
    contiguous = " && ".join(f"PyArray_IS_C_CONTIGUOUS({name})" for name in buffers)
    return f"""
    if ({contiguous}) {{
        if ({function_name}(PyArray_SIZE({output_names[0]}), {", ".join(arguments)})) {{ {fail} }}
    }} else {{
        {strided_loop}
    }}
    """
