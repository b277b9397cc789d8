"""The exported Paddle program as an ONNX graph: paddle2onnx, then the attributes it gets wrong.

paddle2onnx 2.1.0 converts InvDN's PIR program (model.json) without an error, but every
LeakyRelu of the graph gets an uninitialised ``alpha`` instead of the program's
``negative_slope`` 0.2 (values seen across the 192 nodes of one conversion: 0, 1.4e-45,
2.5e-43, 1.7e19, 7.8e31, NaN; they change from run to run). PIR stores that attribute as a 64-bit
float (``0.a_f64`` in model.json); most likely the converter looks for a 32-bit one. The
converted demo model's ONNX Runtime output is NaN everywhere on the real block of docs/demo
(three conversions); the issue saw outputs off by up to 7 on other weights. ``convert_program`` therefore reads the
attributes that matter from the Paddle program itself and compares them with the graph:
- ``leaky_relu.negative_slope`` -> ``LeakyRelu.alpha``, node by node in program order:
  repaired in the graph (onnx.helper) when they differ;
- ``conv2d`` / ``depthwise_conv2d`` / ``conv2d_transpose`` strides, paddings, dilations and
  groups -> ``Conv`` / ``ConvTranspose`` (also the Haar transforms, which are grouped
  convolutions): found correct with paddle2onnx 2.1.0; a mismatch is refused, not guessed;
- ``index_select.axis`` -> ``Gather.axis`` (the coupling's channel permutation): checked too.
The output of the repaired graph is then compared numerically by deploy.export.

Nothing here imports paddle2onnx or onnx at module import time (requirements-deploy.txt).
"""
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Dict, List, Tuple

DEPLOY_REQUIREMENTS = 'requirements-deploy.txt'
ONNX_FILE = 'model.onnx'
ONNX_OPSET = 13
# The contract's names (core.contract) for the graph's dynamic axes and output.
OUTPUT_NAME = 'denoised'
_DYNAMIC_AXES = {'noisy': ('N', None, 'H', 'W'), 'z': ('KN', None, 'H_latent', 'W_latent')}
# Relative tolerance for a float attribute: the graph stores float32, the program float64.
_FLOAT_TOLERANCE = 1e-6


class OnnxConversionError(RuntimeError):
    """paddle2onnx failed, or wrote a graph whose attributes cannot be trusted."""


def require(module: str) -> Any:
    """Import an optional deployment package, or raise ImportError naming the file to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f'{module} is not installed: pip install -r {DEPLOY_REQUIREMENTS} '
                          '(the ONNX Runtime / OpenVINO back ends and --format onnx need it)') from None


@dataclass
class ConversionReport:
    path: str
    repairs: Dict[str, int] = field(default_factory=dict)  # what was wrong -> nodes repaired
    checked: Dict[str, int] = field(default_factory=dict)  # attribute -> nodes compared


def _program_ops(program_file: str) -> List[Tuple[str, Dict[str, Any]]]:
    """(op name, {attribute: value}) of every operation of a PIR program (model.json), in order."""
    with open(program_file) as f:
        program = json.load(f)
    ops: List[Tuple[str, Dict[str, Any]]] = []

    def value(attribute: Any) -> Any:
        data = attribute.get('D') if isinstance(attribute, dict) else attribute
        if isinstance(data, list):
            return [value(item) for item in data]
        return data

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            kind = node.get('#')
            if isinstance(kind, str) and kind.startswith('1.') and isinstance(node.get('A'), list):
                ops.append((kind[2:], {a['N']: value(a['AT']) for a in node['A']
                                       if isinstance(a, dict) and 'N' in a and 'AT' in a}))
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(program)
    return ops


def _attributes(node: Any) -> Dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _conv_signature(strides: List[int], pads: List[int], dilations: List[int], group: int) -> tuple:
    return tuple(strides), tuple(pads), tuple(dilations), int(group)


def _paddle_conv_signatures(ops: List[Tuple[str, Dict[str, Any]]], transpose: bool) -> Counter:
    names = ('conv2d_transpose',) if transpose else ('conv2d', 'depthwise_conv2d')
    signatures: Counter = Counter()
    for name, attrs in ops:
        if name in names:
            pads = attrs['paddings']
            # Paddle: [h, w] or [top, bottom, left, right]; ONNX: [top, left, bottom, right].
            pads = pads * 2 if len(pads) == 2 else [pads[0], pads[2], pads[1], pads[3]]
            signatures[_conv_signature(attrs['strides'], pads, attrs['dilations'], attrs['groups'])] += 1
    return signatures


def _onnx_conv_signatures(nodes: List[Any], op_type: str) -> Counter:
    signatures: Counter = Counter()
    for node in nodes:
        if node.op_type == op_type:
            attrs = _attributes(node)
            signatures[_conv_signature(attrs.get('strides', [1, 1]), attrs.get('pads', [0, 0, 0, 0]),
                                       attrs.get('dilations', [1, 1]), attrs.get('group', 1))] += 1
    return signatures


def check_and_repair(model: Any, program_file: str) -> Tuple[Dict[str, int], Dict[str, int]]:
    """Compare ``model`` (an onnx.ModelProto, changed in place) with the Paddle program.

    Returns (repairs, checked); raises OnnxConversionError for what cannot be repaired.
    """
    from onnx import helper

    ops = _program_ops(program_file)
    nodes = list(model.graph.node)
    repairs: Dict[str, int] = {}
    checked: Dict[str, int] = {}

    slopes = [float(attrs['negative_slope']) for name, attrs in ops if name == 'leaky_relu']
    activations = [node for node in nodes if node.op_type == 'LeakyRelu']
    if len(slopes) != len(activations):
        raise OnnxConversionError(f'the Paddle program has {len(slopes)} leaky_relu ops, the ONNX '
                                  f'graph {len(activations)} LeakyRelu nodes')
    wrong = 0
    for slope, node in zip(slopes, activations):
        alpha = next((a for a in node.attribute if a.name == 'alpha'), None)
        # paddle2onnx's value is garbage, NaN included: test for agreement, not for difference.
        if alpha is None or not abs(alpha.f - slope) <= _FLOAT_TOLERANCE * max(abs(slope), 1.0):
            wrong += 1
            if alpha is not None:
                node.attribute.remove(alpha)
            node.attribute.append(helper.make_attribute('alpha', slope))
    checked['LeakyRelu.alpha'] = len(activations)
    if wrong:
        repairs['LeakyRelu.alpha (paddle2onnx does not carry negative_slope over)'] = wrong

    for transpose, op_type in ((False, 'Conv'), (True, 'ConvTranspose')):
        expected = _paddle_conv_signatures(ops, transpose)
        found = _onnx_conv_signatures(nodes, op_type)
        if expected != found:
            raise OnnxConversionError(
                f'{op_type} strides/pads/dilations/group differ from the Paddle program: '
                f'program {dict(expected)}, graph {dict(found)}')
        checked[f'{op_type} strides/pads/dilations/group'] = sum(found.values())

    # Shapes are gathered on axis 0; the channel permutations are the only gathers on axis 1.
    permutations = sum(1 for name, attrs in ops if name == 'index_select' and int(attrs['axis']) == 1)
    gathers = sum(1 for node in nodes if node.op_type == 'Gather' and _attributes(node).get('axis', 0) == 1)
    if permutations != gathers:
        raise OnnxConversionError(f'channel permutations: the program has {permutations} '
                                  f'index_select(axis=1), the graph {gathers} Gather(axis=1)')
    checked['Gather.axis'] = gathers
    return repairs, checked


def _name_interface(model: Any) -> None:
    """Dynamic axes and the output named as in model_contract.json."""
    for graph_input in model.graph.input:
        for dim, name in zip(graph_input.type.tensor_type.shape.dim,
                             _DYNAMIC_AXES.get(graph_input.name, ())):
            if name:
                dim.Clear()
                dim.dim_param = name
    output = model.graph.output[0]
    old = output.name
    for node in model.graph.node:
        for k, name in enumerate(node.output):
            if name == old:
                node.output[k] = OUTPUT_NAME
    output.name = OUTPUT_NAME
    for dim, name in zip(output.type.tensor_type.shape.dim, ('KN', None, 'H', 'W')):
        if name:
            dim.Clear()
            dim.dim_param = name


def convert_program(program_file: str, params_file: str, save_file: str) -> ConversionReport:
    """paddle2onnx ``program_file`` to ``save_file`` + '.tmp', checked and repaired against
    the program; the caller verifies the graph and renames it.

    paddle2onnx's graph optimisation is skipped (onnxoptimizer 0.3.13 also rejects its pass
    list); ONNX Runtime and OpenVINO fold the constants themselves.
    """
    paddle2onnx = require('paddle2onnx')
    onnx = require('onnx')
    if not program_file.endswith('.json'):
        raise OnnxConversionError(f'{program_file}: the ONNX export reads PIR programs (model.json, '
                                  'written by Paddle 3); export the model again with export_model.py')
    # save_file=None returns the graph and skips paddle2onnx's optimiser, whose default
    # (Polygraphy) pip-installs onnx_graphsurgeon from the network at run time.
    graph = paddle2onnx.export(program_file, params_file, save_file=None, opset_version=ONNX_OPSET,
                               enable_onnx_checker=True)
    if not graph:
        raise OnnxConversionError(f'paddle2onnx returned no graph for {program_file}')
    model = onnx.load_from_string(graph)
    repairs, checked = check_and_repair(model, program_file)
    _name_interface(model)
    onnx.checker.check_model(model)
    tmp = save_file + '.tmp'
    onnx.save(model, tmp)
    return ConversionReport(tmp, repairs, checked)
