// ncursesw for Swift: the wide-character API needs NCURSES_WIDECHAR (SwiftPM drops
// pkg-config's -D_XOPEN_SOURCE=600), and macros / globals are read through inline functions.
#ifndef NCURSES_WIDECHAR
#define NCURSES_WIDECHAR 1
#endif
#include <locale.h>
#include <ncursesw/curses.h>
static inline int cn_getmaxy(WINDOW *w) { int y, x; getmaxyx(w, y, x); (void)x; return y; }
static inline int cn_getmaxx(WINDOW *w) { int y, x; getmaxyx(w, y, x); (void)y; return x; }
static inline int cn_color_pair(short n) { return (int)COLOR_PAIR(n); }
static inline WINDOW *cn_stdscr(void) { return stdscr; }
static inline int cn_a_bold(void) { return (int)A_BOLD; }
static inline int cn_a_reverse(void) { return (int)A_REVERSE; }
static inline int cn_a_dim(void) { return (int)A_DIM; }
static inline int cn_key_resize(void) { return KEY_RESIZE; }
static inline int cn_key_mouse(void) { return KEY_MOUSE; }
static inline unsigned long cn_button1_clicked(void) { return (unsigned long)(BUTTON1_CLICKED | BUTTON1_PRESSED); }
static inline unsigned long cn_button4_pressed(void) { return (unsigned long)BUTTON4_PRESSED; }
static inline unsigned long cn_button5_pressed(void) { return (unsigned long)BUTTON5_PRESSED; }
static inline void cn_enable_mouse(void) { mousemask(BUTTON1_CLICKED | BUTTON1_PRESSED | BUTTON4_PRESSED | BUTTON5_PRESSED, NULL); mouseinterval(0); }
/* Fills x, y and the button state of the last mouse event; 0 on success. */
static inline int cn_mouse(int *x, int *y, unsigned long *buttons) {
    MEVENT e; if (getmouse(&e) != OK) return -1;
    *x = e.x; *y = e.y; *buttons = (unsigned long)e.bstate; return 0;
}
/* term.h last: its capability macros (buttons, lines …) would rename parameters above. */
#include <ncursesw/term.h>
/* 1 when $TERM names a terminal the terminfo database describes; else 0 (initscr would
 * print its own message and exit). */
static inline int cn_terminal_known(void) {
    int err = 0;
    if (setupterm(NULL, 1, &err) != OK) return 0;
    del_curterm(cur_term);
    return 1;
}
