/** The lab's services, started in this order. Add a service: one file, one line here. */
import type { LabService } from '../service.ts';
import { echo } from './echo.ts';
import { postgres } from './postgres.ts';
import { ssh } from './ssh.ts';
import { rdp } from './rdp.ts';
import { files } from './files.ts';
import { smb } from './smb.ts';
import { web } from './web.ts';
import { nginx } from './nginx.ts';
import { redis } from './redis.ts';
import { mariadb } from './mariadb.ts';

export const services: LabService[] = [echo, ssh, postgres, rdp, files, smb, web, nginx, redis, mariadb];
