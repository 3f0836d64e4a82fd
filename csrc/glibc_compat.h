/* Portable Linux wheels (manylinux_2_28, set up by setup.py): glibc 2.34 moved the pthread
 * functions from libpthread into libc under a new symbol version. Bind the ones fastrnn calls to
 * the x86-64 baseline version that every glibc exports (the same functions; in glibc >= 2.34 at
 * the same address), so that a build on a new glibc also loads on an older one, where
 * libpthread.so.0 (linked by setup.py for this) provides them. Include it in every file that
 * calls one of them (auditwheel in .ci/run fails the wheel otherwise). */
#ifndef FRNN_GLIBC_COMPAT_H
#define FRNN_GLIBC_COMPAT_H
#if defined(FRNN_GLIBC_COMPAT) && defined(__x86_64__) && defined(__GLIBC__)
__asm__(".symver pthread_create,pthread_create@GLIBC_2.2.5");
__asm__(".symver pthread_once,pthread_once@GLIBC_2.2.5");
__asm__(".symver pthread_key_create,pthread_key_create@GLIBC_2.2.5");
__asm__(".symver pthread_setspecific,pthread_setspecific@GLIBC_2.2.5");
__asm__(".symver pthread_getspecific,pthread_getspecific@GLIBC_2.2.5");
#endif
#endif
