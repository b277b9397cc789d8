"""A browser demo: drop a photo, see it denoised by InvDN, download the result.

  pip install -r requirements-demo.txt
  python app.py                       # then open http://127.0.0.1:7860

The page denoises as predict.py does (the same image loop, back end choice and defaults; a
photo and settings give the same image), shows before/after and, with a clean image,
PSNR/SSIM, and offers the result at the photo's bit depth. It serves this machine only
(--host 0.0.0.0 serves the network); nothing is sent elsewhere: no share link, no analytics.
Requests are queued and run one at a time. More: docs/web_demo.md.
"""
import os

from apps import cli


def parse_args(argv=None):
    parser = cli.make_parser(__doc__)
    parser.add_argument('--host', default='127.0.0.1',
                        help='address to serve on (0.0.0.0: every network interface)')
    parser.add_argument('--port', type=cli.positive_int, default=7860, help='port to serve on')
    parser.add_argument('--max_upload_mb', type=cli.positive_float, default=200,
                        help='uploads larger than this are refused by the page')
    parser.add_argument('--queue_size', type=cli.positive_int, default=16,
                        help='requests that may wait for the one running; more are turned away')
    cli.add_model_args(parser)
    cli.add_device_args(parser)
    cli.add_backend_args(parser, photos=True)
    cli.add_tiling_args(parser)
    cli.add_pixel_limit_arg(parser)
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    import logging
    import signal
    import socket
    import sys
    import tempfile

    with socket.socket() as probe:  # before minutes of loading, not in Gradio's traceback after
        try:
            probe.bind((args.host, args.port))
        except OSError as err:
            cli.fail(f'cannot serve on {args.host}:{args.port} ({err.strerror}): another server has '
                     'that port; choose another with --port')
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # a stopped server cleans up too
    with tempfile.TemporaryDirectory(prefix='invdn-demo-') as work_dir:
        # Before Gradio and huggingface_hub are imported: no usage statistics, no Hub requests,
        # and Gradio's copies of uploads and shown images inside work_dir, removed at exit.
        os.environ.update(GRADIO_ANALYTICS_ENABLED='False', HF_HUB_OFFLINE='1', HF_HUB_DISABLE_TELEMETRY='1',
                          GRADIO_TEMP_DIR=os.path.join(work_dir, 'gradio'))
        cli.prepare_process(args.verbose)
        try:
            import gradio as gr
        except ImportError:
            cli.fail('the demo needs Gradio: pip install -r requirements-demo.txt')
        from apps import models
        from apps.web_demo import Denoiser, build_page
        from core.denoise import DenoiseOptions

        what = cli.find_weights(args.weights)[1]
        model = models.load_model(args, options=DenoiseOptions(  # the page's initial tile works
            tile=args.tile, tile_overlap=args.tile_overlap, max_memory=int(args.max_memory * 2 ** 30)))
        logging.getLogger('httpx').setLevel(logging.WARNING)  # Gradio's own start-up requests
        # System fonts: the default theme would have the browser fetch web fonts.
        theme = gr.themes.Default(font=['system-ui', 'sans-serif'], font_mono=['ui-monospace', 'monospace'])
        results = os.path.join(work_dir, 'results')
        os.makedirs(results)
        tile = 'auto' if args.tile == 'auto' else str(args.tile or 0)
        page = build_page(Denoiser(args, model, results), f'Weights: {what}.', tile)
        page.queue(default_concurrency_limit=1, max_size=args.queue_size)
        print(f'serving on http://{args.host}:{args.port} (Ctrl+C stops)', flush=True)
        page.launch(server_name=args.host, server_port=args.port, share=False, theme=theme, quiet=True,
                    max_file_size=int(args.max_upload_mb * 2 ** 20), allowed_paths=[results],
                    footer_links=[])

if __name__ == '__main__':
    main()
